"""The SDK: artifacts, runs and the public Api, on top of the content store and catalog."""
