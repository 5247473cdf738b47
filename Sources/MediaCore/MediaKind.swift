/// The three kinds of media the gateway stores. Each kind has its own RADOS pool and its own
/// PostgreSQL partition.
public enum MediaKind: String, Sendable, Hashable, CaseIterable, Codable, CustomStringConvertible {
    case photo
    case audio
    case video

    public var description: String { rawValue }
}
