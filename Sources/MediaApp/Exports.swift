// The executables import MediaApp alone: the domain's types and the logger come with it.
@_exported import Logging
@_exported import MediaCore
