"""Disposable lab targets: a cached Debian 12 image booted N times with systemd-nspawn."""
