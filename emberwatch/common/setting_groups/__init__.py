"""The common settings, one class per concern; ``emberwatch.common.config.Settings`` composes them."""
