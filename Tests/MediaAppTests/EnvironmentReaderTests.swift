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
}
