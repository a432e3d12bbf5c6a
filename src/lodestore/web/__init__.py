"""`lode ui`: a local web page over a JSON REST API (/api/v1), both calling only the SDK's
service door (`lodestore.sdk.service.Service`). See docs/web.md."""
