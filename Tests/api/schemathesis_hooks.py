"""schemathesis hooks of the API contract test: the upload protocols' body media types are byte strings,
serialized as application/octet-stream is."""
import schemathesis

schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")
schemathesis.serializer.alias("application/partial-upload", "application/octet-stream")
