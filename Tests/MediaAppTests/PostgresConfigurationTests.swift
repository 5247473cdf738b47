import MediaCore
import PostgresMetadata
import Testing

@Suite struct PostgresConfigurationTests {
    @Test func aFullURLGivesEveryPartPercentDecoded() throws {
        let configuration = try PostgresConfiguration(
            url: "postgresql://media%20gw:p%40ss:w@db-1.example.org:6432/media%5Fgw?application_name=x&sslmode=require"
        )
        #expect(configuration.username == "media gw")
        #expect(configuration.password == "p@ss:w")
        #expect(configuration.host == "db-1.example.org")
        #expect(configuration.port == 6432)
        #expect(configuration.database == "media_gw")
        #expect(configuration.tls == .require)
    }

    @Test func theDefaultsAreThePortAndNoPasswordAndNoTLS() throws {
        let configuration = try PostgresConfiguration(url: "postgres://mediagw@127.0.0.1/mediagw")
        #expect(configuration.port == 5432)
        #expect(configuration.password == nil)
        #expect(configuration.tls == .disable)
    }

    @Test func anIPv6LiteralIsTheAddressWithoutItsBrackets() throws {
        let configuration = try PostgresConfiguration(url: "postgres://mediagw:secret@[::1]:15432/mediagw")
        #expect(configuration.host == "::1")
        #expect(configuration.port == 15432)
        #expect(configuration.password == "secret")
    }

    @Test(arguments: [
        "mysql://u@h/db", "postgres//u@h/db", "postgres://u@/db", "postgres://u@h:port/db", "postgres://u@h:/db",
        "postgres://u@h:-1/db", "postgres://u@[::1/db", "postgres://u@[::1]x/db", "postgres://u@h o/db", "postgres://u@h/d b",
        "postgres://u@h/db%zz", "postgres://u%zz@h/db",
    ])
    func whatIsNotAPostgresURLIsRefused(_ url: String) {
        #expect {
            try PostgresConfiguration(url: url)
        } throws: { error in
            (error as? ConfigurationError)?.message.contains("MEDIAGW_DATABASE_URL must look like") == true
        }
    }

    @Test(arguments: ["postgres://127.0.0.1/mediagw", "postgres://:pw@127.0.0.1/mediagw", "postgres://u@127.0.0.1", "postgres://u@127.0.0.1/"])
    func aURLWithoutAUserOrADatabaseIsRefused(_ url: String) {
        #expect {
            try PostgresConfiguration(url: url)
        } throws: { error in
            (error as? ConfigurationError)?.message == "MEDIAGW_DATABASE_URL must name a user and a database"
        }
    }

    @Test func anUnknownSSLModeIsRefused() {
        #expect(throws: ConfigurationError.self) { try PostgresConfiguration(url: "postgres://u@h/db?sslmode=prefer") }
    }

    @Test(arguments: [
        ("public", true), ("_media_2", true), ("media", true), ("2media", false), ("Media", false), ("", false), ("me-dia", false),
        (String(repeating: "a", count: 63), true), (String(repeating: "a", count: 64), false),
    ])
    func theSchemaMustBeALowercaseSQLIdentifier(_ schema: String, _ valid: Bool) {
        var configuration = PostgresConfiguration()
        configuration.schema = schema
        #expect(((try? configuration.validate()) != nil) == valid)
    }
}
