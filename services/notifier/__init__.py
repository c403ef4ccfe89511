"""Notifier: tells the team on Discord about candidates, decisions and operational alerts."""
