"""The Generative tab: train a VAE, DCGAN or DDPM on the project's images (or built-in digits), watch it learn,
then look inside it: samples, latent interpolation, the diffusion forward and reverse processes, KID/FID."""
