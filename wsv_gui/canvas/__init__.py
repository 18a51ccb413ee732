"""The image canvas: the picture, the user's marks and the network's predictions as layers."""
