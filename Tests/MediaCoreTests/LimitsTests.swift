import MediaCore
import Testing

@Suite struct LimitsTests {
    let mb = UploadLimits.mebibyte

    @Test func postDefaultsMatchTheProductBrief() {
        let post = UploadLimits.defaults.post
        #expect(post.photo == KindLimit(maxCount: 5, maxBytes: 1 * mb))
        #expect(post.audio == KindLimit(maxCount: 3, maxBytes: 5 * mb))
        #expect(post.video == KindLimit(maxCount: 1, maxBytes: 10 * mb))
        #expect(post.largestItem == 10 * mb)
    }

    @Test func profileTakesOnePhotoAndNothingElse() {
        let profile = UploadLimits.defaults.profile
        #expect(profile[.photo] == KindLimit(maxCount: 1, maxBytes: 1 * mb))
        #expect(profile[.audio].maxCount == 0)
        #expect(profile[.video].maxCount == 0)
    }

    @Test func defaultsAreValid() throws {
        try UploadLimits.defaults.validate()
    }

    @Test func aNegativeCountIsRefused() {
        var limits = UploadLimits.defaults
        limits[.message][.audio] = KindLimit(maxCount: -1, maxBytes: mb)
        #expect(throws: ConfigurationError.self) { try limits.validate() }
    }

    @Test func itemsOfZeroBytesAreRefused() {
        var limits = UploadLimits.defaults
        limits.community.video = KindLimit(maxCount: 2, maxBytes: 0)
        #expect(throws: ConfigurationError.self) { try limits.validate() }
    }

    @Test func poolsAreChosenByKind() {
        let pools = StoragePools()
        #expect(pools.pool(for: .photo) == "media.photo")
        #expect(pools.pool(for: .audio) == "media.audio")
        #expect(pools.pool(for: .video) == "media.video")
        #expect(pools.all == ["media.photo", "media.audio", "media.video", "media.derived"])
    }
}
