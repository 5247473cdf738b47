import MediaConcurrency

/// An error of the media use cases, with a stable machine-readable code and a message that is safe to show
/// to the client that caused it. The cause (an adapter's typed error) is for logs only.
public struct MediaError: Error, Sendable, CustomStringConvertible {
    /// Stable codes; the raw values are the `error.code` strings of the HTTP API.
    public enum Code: String, Sendable, Hashable, CaseIterable {
        case unauthorized
        case forbidden
        case tokenExpired = "token_expired"
        /// A signed media URL past its expiry.
        case urlExpired = "url_expired"
        case invalidRequest = "invalid_request"
        case unsupportedMediaType = "unsupported_media_type"
        case tooLarge = "too_large"
        case limitExceeded = "limit_exceeded"
        case notFound = "not_found"
        case setCommitted = "set_committed"
        case setExpired = "set_expired"
        case timedOut = "timed_out"
        case unavailable
        case shuttingDown = "shutting_down"
        /// A resumable upload has received another number of bytes than the request says.
        case offsetMismatch = "offset_mismatch"
        /// Another request is appending to the same resumable upload.
        case uploadBusy = "upload_busy"
        /// A piece's body does not match its `Upload-Checksum`.
        case checksumMismatch = "checksum_mismatch"
        /// Events after an outbox cursor were dropped by retention: the reader must resynchronise.
        case cursorExpired = "cursor_expired"
        case `internal`
    }

    public var code: Code
    public var message: String
    public var cause: (any Error & Sendable)?

    public init(_ code: Code, _ message: String, cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String {
        cause.map { "\(code.rawValue): \(message) (cause: \($0))" } ?? "\(code.rawValue): \(message)"
    }

    /// Translates an adapter's error at the use-case boundary. Store failures become `unavailable` (retry
    /// later) or `internal`; their details stay in `cause`, out of the public message.
    public static func from(_ error: any Error, doing operation: String) -> MediaError {
        switch error {
        case let error as MediaError:
            return error
        case let error as BlobStoreError:
            switch error.code {
            case .timedOut, .unavailable, .noSpace:
                return MediaError(.unavailable, "media storage is unavailable; retry later", cause: error)
            case .notFound:
                return MediaError(.notFound, "the media object does not exist", cause: error)
            case .superseded:
                return MediaError(.uploadBusy, "another request took this upload over", cause: error)
            default:
                return MediaError(.internal, "\(operation) failed", cause: error)
            }
        case let error as MetadataStoreError:
            switch error.code {
            case .timedOut, .unavailable:
                return MediaError(.unavailable, "the metadata database is unavailable; retry later", cause: error)
            case .notFound:
                return MediaError(.notFound, "not found", cause: error)
            case .limitExceeded:
                return MediaError(.limitExceeded, error.message, cause: error)
            case .setCommitted:
                return MediaError(.setCommitted, "the upload set is already committed", cause: error)
            case .setExpired:
                return MediaError(.setExpired, "the upload set has expired", cause: error)
            case .cursorExpired:
                return MediaError(.cursorExpired, error.message, cause: error)
            case .conflict, .other:
                return MediaError(.internal, "\(operation) failed", cause: error)
            }
        case is CancellationError:
            return MediaError(.unavailable, "\(operation) was cancelled")
        case let error as DeadlineExceeded:
            return MediaError(.timedOut, "\(operation) took too long", cause: error)
        default:
            return MediaError(.internal, "\(operation) failed", cause: DescribedError(error))
        }
    }
}

/// Any error, kept as its description so that it can travel as a Sendable cause.
public struct DescribedError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ error: any Error) { description = String(describing: error) }
}
