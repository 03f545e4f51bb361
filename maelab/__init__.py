"""maelab: masked autoencoders and measured tests of the theory of why they work."""

__version__ = "0.1.0"
