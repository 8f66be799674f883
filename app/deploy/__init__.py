"""Deployment files (the systemd unit)."""
