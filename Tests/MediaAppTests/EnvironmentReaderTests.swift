import MediaApp
import Testing

@Suite struct EnvironmentReaderTests {
    @Test(arguments: [("1048576", Int64(1_048_576)), ("512KiB", 524_288), ("10MiB", 10_485_760), ("2G", 2_147_483_648), ("7B", 7)])
    func byteCountsAcceptUnits(_ raw: String, _ expected: Int64) throws {
        #expect(try EnvironmentReader(["X": raw]).bytes("X", default: 0) == expected)
    }

    @Test(arguments: ["-1", "1.5MiB", "ten", "99999999999999999999GiB"])
    func badByteCountsNameTheVariable(_ raw: String) {
        #expect {
            try EnvironmentReader(["MEDIAGW_X": raw]).bytes("MEDIAGW_X", default: 0)
        } throws: { error in
            (error as? ConfigurationError)?.message.hasPrefix("MEDIAGW_X=") == true
        }
    }

    @Test(arguments: [
        ("10", Duration.seconds(10)), ("2.5s", .milliseconds(2500)), ("500ms", .milliseconds(500)), ("24h", .seconds(86_400)), ("1.5m", .seconds(90)),
        ("7d", .seconds(7 * 86_400)),
    ])
    func durationsAcceptUnits(_ raw: String, _ expected: Duration) throws {
        #expect(try EnvironmentReader(["T": raw]).duration("T", default: .zero) == expected)
    }

    @Test func unsetAndEmptyValuesFallBackToTheDefault() throws {
        let env = EnvironmentReader(["EMPTY": "  "])
        #expect(try env.int("EMPTY", default: 3) == 3)
        #expect(try env.int("MISSING", default: 4) == 4)
        #expect(env.string("EMPTY", default: "d") == "d")
        #expect(throws: ConfigurationError.self) { try env.requiredString("MISSING") }
    }

    @Test func booleansAreStrict() throws {
        #expect(try EnvironmentReader(["B": "yes"]).bool("B", default: false))
        #expect(try !EnvironmentReader(["B": "off"]).bool("B", default: true))
        #expect(throws: ConfigurationError.self) { try EnvironmentReader(["B": "maybe"]).bool("B", default: true) }
    }

    @Test func outboxRetentionDefaultsToSevenDaysWithAWeekAheadAndRefusesLessThanADay() throws {
        let defaults = try OutboxRetentionConfiguration(environment: EnvironmentReader([:]))
        #expect(defaults.retention == .seconds(7 * 86_400) && defaults.daysAhead == 7 && defaults.interval == .seconds(3600))
        let custom = try OutboxRetentionConfiguration(
            environment: EnvironmentReader([
                "MEDIAGW_OUTBOX_RETENTION": "30d", "MEDIAGW_OUTBOX_DAYS_AHEAD": "14", "MEDIAGW_OUTBOX_ROTATION_INTERVAL": "0",
            ])
        )
        #expect(custom.retention == .seconds(30 * 86_400) && custom.daysAhead == 14 && custom.interval == .zero)
        for (name, value) in [
            ("MEDIAGW_OUTBOX_RETENTION", "12h"), ("MEDIAGW_OUTBOX_DAYS_AHEAD", "0"), ("MEDIAGW_OUTBOX_DAYS_AHEAD", "61"),
            ("MEDIAGW_OUTBOX_ROTATION_INTERVAL", "10s"),
        ] {
            #expect(throws: ConfigurationError.self, "\(name)=\(value)") {
                try OutboxRetentionConfiguration(environment: EnvironmentReader([name: value]))
            }
        }
    }
}
