"""genlab: a lab suite for generative models."""
