"""Segmentation networks: a small U-Net that trains from scratch on a CPU, torchvision heads, and an
EfficientNet-Lite0 U-Net with offline ImageNet weights; saved as safetensors + JSON config."""
