"""covey: the device — configuration, CLI, the assistant pipeline."""
