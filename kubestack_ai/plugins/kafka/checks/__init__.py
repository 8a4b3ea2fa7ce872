"""One module per category (broker, consumer, topic); each exposes its category class,
whose ``@category`` methods the plugin inherits, and pure rule functions the tests feed."""
