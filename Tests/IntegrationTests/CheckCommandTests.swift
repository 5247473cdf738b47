import Foundation
import MediaTesting
import PostgresMetadata
import Testing

/// `mediagw check` against the real stack, and each way its configuration can be wrong: one clear line,
/// a non-zero exit, no hang and no stack trace.
@Suite struct CheckCommandTests {
    func check(_ overrides: [String: String] = [:]) async throws -> (status: Int32, output: String) {
        var environment = TestStack.environment
        for (name, value) in overrides { environment[name] = value }
        return try await TestStack.run(TestStack.mediagwPath, ["check"], environment: environment)
    }

    @Test func migrateThenCheckReportsBothServicesAndEveryPool() async throws {
        try TestStack.requireStack()
        let migrate = try await TestStack.run(TestStack.mediagwPath, ["migrate"])
        #expect(migrate.status == 0, "\(migrate.output)")
        #expect(migrate.output.contains("schema"))
        let (status, output) = try await check()
        #expect(status == 0, "\(output)")
        #expect(output.contains("ok   ceph: connected as client.mediagw"))
        for pool in try TestStack.pools().all {
            #expect(output.contains("ok   ceph: pool \(pool): write, stat and remove OK"))
        }
        #expect(output.contains("ok   postgres: PostgreSQL 15"))
        #expect(output.contains("ok   postgres: schema at version \(Schema.migrations.map(\.version).max() ?? 0) (latest)"))
    }

    @Test func plansExplainEveryHotStatementAndWriteNothing() async throws {
        try TestStack.requireStack()
        let migrate = try await TestStack.run(TestStack.mediagwPath, ["migrate"])
        #expect(migrate.status == 0, "\(migrate.output)")
        let sets = try await TestStack.run(
            "/usr/bin/psql",
            [TestStack.environment["MEDIAGW_DATABASE_URL"] ?? "", "-tAc", "SELECT count(*) FROM upload_sets"]
        )
        let (status, output) = try await TestStack.run(TestStack.mediagwPath, ["plans"])
        #expect(status == 0, "\(output)")
        let summaries = output.split(separator: "\n").filter { !$0.hasPrefix(" ") }
        #expect(
            summaries.map { String($0.prefix { $0 != ":" }) } == [
                "record an upload", "the origin's lookup", "read a media item", "claim a job", "claim an expired lease", "read events after a cursor",
            ],
            "\(output)"
        )
        #expect(output.contains("Insert on media"), "the upload's statement runs whole, into a draft set of its own")
        let after = try await TestStack.run(
            "/usr/bin/psql",
            [TestStack.environment["MEDIAGW_DATABASE_URL"] ?? "", "-tAc", "SELECT count(*) FROM upload_sets"]
        )
        #expect(after.output == sets.output, "every statement was rolled back")
    }

    @Test func aMissingCephConfIsOneClearLine() async throws {
        let (status, output) = try await check(["MEDIAGW_CEPH_CONF": "/nonexistent/ceph.conf"])
        #expect(status == 1)
        #expect(output.contains("FAIL ceph: Ceph configuration /nonexistent/ceph.conf does not exist or is not readable"))
    }

    @Test func aMissingKeyringIsOneClearLine() async throws {
        let (status, output) = try await check(["MEDIAGW_CEPH_KEYRING": "/nonexistent/keyring"])
        #expect(status == 1)
        #expect(output.contains("FAIL ceph: Ceph keyring /nonexistent/keyring does not exist or is not readable"))
    }

    @Test func aWrongKeyIsRefusedByTheMonitors() async throws {
        let keyring = FileManager.default.temporaryDirectory.appendingPathComponent("wrong-\(UUID()).keyring")
        try "[client.mediagw]\n\tkey = AQBwrongwrongwrongwrongwrongwrongwrongwA==\n".write(to: keyring, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: keyring) }
        let (status, output) = try await check(["MEDIAGW_CEPH_KEYRING": keyring.path])
        #expect(status == 1)
        #expect(output.contains("FAIL ceph: Ceph monitors refused to authenticate client.mediagw"), "\(output)")
    }

    @Test func anUnreachableMonitorFailsWithinTheMountTimeout() async throws {
        let conf =
            try String(contentsOfFile: TestStack.environment["MEDIAGW_CEPH_CONF"] ?? "", encoding: .utf8)
            .split(separator: "\n").map { $0.hasPrefix("mon_host") ? "mon_host = [v2:127.0.0.1:1,v1:127.0.0.1:2]" : String($0) }
            .joined(separator: "\n") + "\n"
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("unreachable-\(UUID()).conf")
        try conf.write(to: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: path) }
        var environment = TestStack.environment
        environment["MEDIAGW_CEPH_CONF"] = path.path
        environment["MEDIAGW_CEPH_MOUNT_TIMEOUT"] = "2s"
        let (status, output, duration) = try await TestStack.runTimed(TestStack.mediagwPath, ["check"], environment: environment)
        #expect(status == 1)
        #expect(output.contains("FAIL ceph: no Ceph monitor answered within"), "\(output)")
        #expect(duration < .seconds(20))
    }

    @Test func aWrongDatabasePasswordIsOneClearLine() async throws {
        let url = try #require(TestStack.environment["MEDIAGW_DATABASE_URL"])
        let wrong = url.replacingOccurrences(of: #"://mediagw:[^@]*@"#, with: "://mediagw:wrong@", options: .regularExpression)
        let (status, output) = try await check(["MEDIAGW_DATABASE_URL": wrong])
        #expect(status == 1)
        #expect(output.contains("FAIL postgres: PostgreSQL at mediagw@127.0.0.1"))
        #expect(output.contains("refused the login"))
        #expect(!output.contains("wrong"), "the password is never printed")
    }

    @Test func anInvalidSettingExitsWithCodeTwo() async throws {
        let (status, output) = try await check(["MEDIAGW_CEPH_OP_TIMEOUT": "soon"])
        #expect(status == 2)
        #expect(
            output.trimmingCharacters(in: .whitespacesAndNewlines)
                == "mediagw: error: configuration: MEDIAGW_CEPH_OP_TIMEOUT=soon is not a duration (examples: 10, 2.5s, 500ms, 24h)"
        )
    }
}
