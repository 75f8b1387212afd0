"""Protocol Buffers: a .proto front end, message classes and a wire codec.

``descriptor`` is the schema model every part shares (mirrors of
descriptor.proto).
"""
