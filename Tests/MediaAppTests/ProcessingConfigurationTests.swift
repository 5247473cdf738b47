import MediaApp
import MediaCore
import Testing

@Suite struct ProcessingConfigurationTests {
    @Test func halfTheWorkersTakeVideoFirstByDefault() throws {
        let configuration = try ProcessingConfiguration(environment: EnvironmentReader(["MEDIAGW_WORKERS": "4"]))
        #expect(configuration.workers.lanes == [.stills, .stills, .video, .video])
        #expect(configuration.workers.bulkShare == 0.2)
    }

    @Test(arguments: [
        ["MEDIAGW_WORKERS": "2", "MEDIAGW_VIDEO_WORKERS": "2"], ["MEDIAGW_WORKERS": "3", "MEDIAGW_VIDEO_WORKERS": "0"],
        ["MEDIAGW_JOB_BULK_SHARE": "0"], ["MEDIAGW_JOB_BULK_SHARE": "95"],
    ])
    func lanesThatWouldStarveAClassOfWorkAreRefusedAtStart(_ variables: [String: String]) {
        #expect {
            try ProcessingConfiguration(environment: EnvironmentReader(variables))
        } throws: { error in
            let message = (error as? ConfigurationError)?.message ?? ""
            return message.contains("MEDIAGW_VIDEO_WORKERS") || message.contains("MEDIAGW_JOB_BULK_SHARE")
        }
    }
}
