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

    @Test func theHoldLimitIsTheJobTimeoutAndALeaseByDefaultAndMustOutlastTheTimeout() throws {
        let defaults = try ProcessingConfiguration(environment: EnvironmentReader([:]))
        #expect(defaults.workers.holdLimit == .seconds(360))
        let set = try ProcessingConfiguration(environment: EnvironmentReader(["MEDIAGW_JOB_TIMEOUT": "10m", "MEDIAGW_JOB_LEASE": "30s"]))
        #expect(set.workers.holdLimit == .seconds(630))
        #expect {
            try ProcessingConfiguration(environment: EnvironmentReader(["MEDIAGW_JOB_TIMEOUT": "5m", "MEDIAGW_JOB_HOLD_LIMIT": "5m"]))
        } throws: { error in
            (error as? ConfigurationError)?.message.contains("MEDIAGW_JOB_HOLD_LIMIT") == true
        }
    }
}
