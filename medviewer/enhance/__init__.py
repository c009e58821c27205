"""Enhancement: the degradation protocol and the engine that runs models over images."""
