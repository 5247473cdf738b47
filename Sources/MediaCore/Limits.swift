/// How many items of one kind a set may hold, and how large each may be.
public struct KindLimit: Hashable, Sendable, Codable {
    public var maxCount: Int
    public var maxBytes: Int64

    public init(maxCount: Int, maxBytes: Int64) {
        self.maxCount = maxCount
        self.maxBytes = maxBytes
    }

    /// The kind is not accepted at all in this context.
    public static let none = KindLimit(maxCount: 0, maxBytes: 0)
}

/// The limits of one context (post, profile, community, message), per media kind.
public struct ContextLimits: Hashable, Sendable, Codable {
    public var photo: KindLimit
    public var audio: KindLimit
    public var video: KindLimit

    public init(photo: KindLimit, audio: KindLimit, video: KindLimit) {
        self.photo = photo
        self.audio = audio
        self.video = video
    }

    public subscript(kind: MediaKind) -> KindLimit {
        get {
            switch kind {
            case .photo: photo
            case .audio: audio
            case .video: video
            }
        }
        set {
            switch kind {
            case .photo: photo = newValue
            case .audio: audio = newValue
            case .video: video = newValue
            }
        }
    }

    /// The largest single item any kind of this context accepts.
    public var largestItem: Int64 { MediaKind.allCases.map { self[$0].maxBytes }.max() ?? 0 }
}

/// Upload limits for every context. `MB` means MiB (2^20 bytes) throughout.
public struct UploadLimits: Hashable, Sendable, Codable {
    public static let mebibyte: Int64 = 1 << 20

    public var post: ContextLimits
    public var profile: ContextLimits
    public var community: ContextLimits
    public var message: ContextLimits

    public init(post: ContextLimits, profile: ContextLimits, community: ContextLimits, message: ContextLimits) {
        self.post = post
        self.profile = profile
        self.community = community
        self.message = message
    }

    public subscript(context: UploadContext) -> ContextLimits {
        get {
            switch context {
            case .post: post
            case .profile: profile
            case .community: community
            case .message: message
            }
        }
        set {
            switch context {
            case .post: post = newValue
            case .profile: profile = newValue
            case .community: community = newValue
            case .message: message = newValue
            }
        }
    }

    /// The defaults of the product brief:
    /// - post: 5 photos of at most 1 MB, 3 audio of at most 5 MB, 1 video of at most 10 MB;
    /// - profile: 1 photo of at most 1 MB, nothing else;
    /// - community (a community's own posts and artwork): 10 photos ≤ 1 MB, 3 audio ≤ 5 MB, 1 video ≤ 10 MB;
    /// - message: 10 photos ≤ 1 MB, 1 audio ≤ 5 MB (a voice note), 1 video ≤ 10 MB.
    public static let defaults: UploadLimits = {
        let mb = UploadLimits.mebibyte
        return UploadLimits(
            post: ContextLimits(
                photo: KindLimit(maxCount: 5, maxBytes: 1 * mb),
                audio: KindLimit(maxCount: 3, maxBytes: 5 * mb),
                video: KindLimit(maxCount: 1, maxBytes: 10 * mb)
            ),
            profile: ContextLimits(photo: KindLimit(maxCount: 1, maxBytes: 1 * mb), audio: .none, video: .none),
            community: ContextLimits(
                photo: KindLimit(maxCount: 10, maxBytes: 1 * mb),
                audio: KindLimit(maxCount: 3, maxBytes: 5 * mb),
                video: KindLimit(maxCount: 1, maxBytes: 10 * mb)
            ),
            message: ContextLimits(
                photo: KindLimit(maxCount: 10, maxBytes: 1 * mb),
                audio: KindLimit(maxCount: 1, maxBytes: 5 * mb),
                video: KindLimit(maxCount: 1, maxBytes: 10 * mb)
            )
        )
    }()

    /// Checks that every limit is coherent (no negative counts, a size for every kind that is allowed).
    public func validate() throws(ConfigurationError) {
        for context in UploadContext.allCases {
            for kind in MediaKind.allCases {
                let limit = self[context][kind]
                guard limit.maxCount >= 0, limit.maxBytes >= 0 else {
                    throw ConfigurationError("limits for \(context) \(kind) must not be negative")
                }
                guard limit.maxCount == 0 || limit.maxBytes > 0 else {
                    throw ConfigurationError("limits for \(context) \(kind) allow \(limit.maxCount) items of 0 bytes")
                }
            }
        }
    }
}
