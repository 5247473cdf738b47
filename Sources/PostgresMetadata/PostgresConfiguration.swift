import Foundation
import MediaCore

/// How the gateway connects to PostgreSQL.
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `MEDIAGW_DATABASE_URL` | `postgres://mediagw@127.0.0.1:5432/mediagw` | `postgres://user:password@host:port/database[?sslmode=disable\|require]` |
/// | `MEDIAGW_DATABASE_MAX_CONNECTIONS` | `20` | connection pool size per gateway process |
/// | `MEDIAGW_DATABASE_CONNECT_TIMEOUT` | `5s` | how long opening a connection may take |
/// | `MEDIAGW_DATABASE_STATEMENT_TIMEOUT` | `5s` | `statement_timeout` and the client-side deadline of each operation |
/// | `MEDIAGW_DATABASE_SCHEMA` | `public` | schema the tables live in (`search_path`); created by `migrate` if missing |
/// | `MEDIAGW_DATABASE_GROUP_COMMIT` | `false` | sets opened, uploads recorded and sets committed at the same time share transactions (see the ingest benchmark before turning it on) |
public struct PostgresConfiguration: Sendable, Hashable {
    public enum TLSMode: String, Sendable, Hashable {
        case disable
        case require
    }

    public var host: String
    public var port: Int
    public var username: String
    public var password: String?
    public var database: String
    public var tls: TLSMode
    public var maxConnections: Int
    public var connectTimeout: Duration
    public var statementTimeout: Duration
    public var schema: String
    /// Whether concurrent writes of the upload path share transactions (``PostgresGroupCommit``).
    public var groupCommit: Bool

    public init(
        host: String = "127.0.0.1",
        port: Int = 5432,
        username: String = "mediagw",
        password: String? = nil,
        database: String = "mediagw",
        tls: TLSMode = .disable,
        maxConnections: Int = 20,
        connectTimeout: Duration = .seconds(5),
        statementTimeout: Duration = .seconds(5),
        schema: String = "public",
        groupCommit: Bool = false
    ) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
        self.tls = tls
        self.maxConnections = maxConnections
        self.connectTimeout = connectTimeout
        self.statementTimeout = statementTimeout
        self.schema = schema
        self.groupCommit = groupCommit
    }

    /// Parses a `postgres://` URL; the pool settings keep their defaults.
    public init(url: String) throws(ConfigurationError) {
        guard let components = URLComponents(string: url),
            components.scheme == "postgres" || components.scheme == "postgresql",
            let host = components.host, !host.isEmpty
        else {
            throw ConfigurationError("MEDIAGW_DATABASE_URL must look like postgres://user:password@host:port/database")
        }
        let database = String(components.path.drop(while: { $0 == "/" }))
        guard let user = components.user, !user.isEmpty, !database.isEmpty else {
            throw ConfigurationError("MEDIAGW_DATABASE_URL must name a user and a database")
        }
        var tls = TLSMode.disable
        if let mode = components.queryItems?.first(where: { $0.name == "sslmode" })?.value {
            guard let parsed = TLSMode(rawValue: mode) else {
                throw ConfigurationError("MEDIAGW_DATABASE_URL sslmode must be disable or require")
            }
            tls = parsed
        }
        self.init(
            host: host,
            port: components.port ?? 5432,
            username: components.user?.removingPercentEncoding ?? user,
            password: components.password?.removingPercentEncoding,
            database: database,
            tls: tls
        )
    }

    public func validate() throws(ConfigurationError) {
        guard (1...65535).contains(port) else { throw ConfigurationError("PostgreSQL port \(port) is out of range") }
        guard (1...1000).contains(maxConnections) else {
            throw ConfigurationError("MEDIAGW_DATABASE_MAX_CONNECTIONS must be between 1 and 1000")
        }
        guard connectTimeout >= .milliseconds(100), statementTimeout >= .milliseconds(100) else {
            throw ConfigurationError("PostgreSQL timeouts must be at least 100ms")
        }
        guard schema.range(of: "^[a-z_][a-z0-9_]{0,62}$", options: .regularExpression) != nil else {
            throw ConfigurationError("MEDIAGW_DATABASE_SCHEMA must be a lowercase SQL identifier")
        }
    }

    /// `user@host:port/database`, without the password.
    public var redacted: String { "\(username)@\(host):\(port)/\(database)" }
}
