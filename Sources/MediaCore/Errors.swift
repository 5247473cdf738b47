/// An error of the blob and pending-ledger layer. Adapters translate their technology's failures into
/// these codes; the messages are for operators and logs, never shown to clients as they are.
public struct BlobStoreError: Error, Sendable, CustomStringConvertible {
    public enum Code: Hashable, Sendable {
        case notFound
        case alreadyExists
        case timedOut
        case noSpace
        case permissionDenied
        /// The store cannot be reached or the client is shut down.
        case unavailable
        case invalidArgument
        /// Another writer claimed the object since this one did (``BlobStore/claim(_:for:)``).
        case superseded
        /// Anything else the store reported (the message says what).
        case other
    }

    public var code: Code
    public var message: String
    public var cause: (any Error & Sendable)?

    public init(_ code: Code, _ message: String, cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    /// Whether retrying later may succeed (the dependency is down or slow, not the request wrong).
    public var isTransient: Bool {
        switch code {
        case .timedOut, .unavailable: true
        default: false
        }
    }

    public var description: String { "blob store: \(message)" }
}

/// An error of the metadata layer.
public struct MetadataStoreError: Error, Sendable, CustomStringConvertible {
    public enum Code: Hashable, Sendable {
        case notFound
        /// A uniqueness or state rule refused the change.
        case conflict
        /// The database cannot be reached, refused the login or did not answer in time.
        case unavailable
        case timedOut
        /// The set already holds as many items of the kind as its limit allows.
        case limitExceeded
        /// The upload set was committed and takes no more uploads.
        case setCommitted
        /// The upload set expired.
        case setExpired
        /// The outbox's retention dropped events above a reader's cursor.
        case cursorExpired
        /// A schema or data problem that a retry will not fix.
        case other
    }

    public var code: Code
    public var message: String
    public var cause: (any Error & Sendable)?

    public init(_ code: Code, _ message: String, cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var isTransient: Bool {
        switch code {
        case .timedOut, .unavailable: true
        default: false
        }
    }

    public var description: String { "metadata store: \(message)" }
}

/// A configuration value is missing or wrong. The message is one line that names the setting.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}
