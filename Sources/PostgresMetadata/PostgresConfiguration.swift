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
/// | `MEDIAGW_DATABASE_GROUP_COMMIT` | `false` | sets opened, uploads recorded and sets committed at the same time share statements; a direct `mediagw ingest` defaults it to `true` |
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
        guard let parts = Self.parse(url), !parts.host.isEmpty else {
            throw ConfigurationError("MEDIAGW_DATABASE_URL must look like postgres://user:password@host:port/database")
        }
        guard let user = parts.user, !user.isEmpty, !parts.database.isEmpty else {
            throw ConfigurationError("MEDIAGW_DATABASE_URL must name a user and a database")
        }
        var tls = TLSMode.disable
        if let mode = parts.sslmode {
            guard let parsed = TLSMode(rawValue: mode) else {
                throw ConfigurationError("MEDIAGW_DATABASE_URL sslmode must be disable or require")
            }
            tls = parsed
        }
        self.init(host: parts.host, port: parts.port ?? 5432, username: user, password: parts.password, database: parts.database, tls: tls)
    }

    /// The parts of `postgres[ql]://[user[:password]@]host[:port]/database[?sslmode=…]`, percent-decoded;
    /// `nil` when it is not such a URL. Read by hand: Foundation's URL types encode every host through
    /// ICU's IDNA tables, which would load ICU into the gateway for this one string.
    static func parse(_ url: String) -> (user: String?, password: String?, host: String, port: Int?, database: String, sslmode: String?)? {
        guard let separator = url.firstRange(of: "://"), ["postgres", "postgresql"].contains(url[..<separator.lowerBound].lowercased())
        else { return nil }
        var rest = url[separator.upperBound...]
        if let fragment = rest.firstIndex(of: "#") { rest = rest[..<fragment] }
        var query: Substring = ""
        if let mark = rest.firstIndex(of: "?") { (rest, query) = (rest[..<mark], rest[rest.index(after: mark)...]) }
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        var authority = rest[..<slash]
        let path = rest[slash...].drop(while: { $0 == "/" })
        let visible = { (text: Substring) in text.unicodeScalars.allSatisfy { $0.value > 0x20 && $0.value < 0x7F } }
        guard visible(authority), visible(path), visible(query) else { return nil }

        var user: String?
        var password: String?
        if let at = authority.lastIndex(of: "@") {
            let info = authority[..<at]
            authority = authority[authority.index(after: at)...]
            let colon = info.firstIndex(of: ":")
            guard let name = String(info[..<(colon ?? info.endIndex)]).removingPercentEncoding else { return nil }
            user = name
            if let colon {
                guard let secret = String(info[info.index(after: colon)...]).removingPercentEncoding else { return nil }
                password = secret
            }
        }

        var host: Substring
        var portText: Substring?
        if authority.hasPrefix("[") {
            // an IPv6 literal: [::1] or [::1]:5432
            guard let close = authority.firstIndex(of: "]") else { return nil }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            guard after.isEmpty || after.hasPrefix(":") else { return nil }
            if !after.isEmpty { portText = after.dropFirst() }
            guard host.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) else { return nil }
        } else {
            let colon = authority.firstIndex(of: ":")
            host = authority[..<(colon ?? authority.endIndex)]
            if let colon { portText = authority[authority.index(after: colon)...] }
            guard host.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == "_" }) else { return nil }
        }
        var port: Int?
        if let portText {
            guard !portText.isEmpty, portText.allSatisfy({ $0.isASCII && $0.isNumber }), let number = Int(portText) else { return nil }
            port = number
        }
        guard let database = String(path).removingPercentEncoding else { return nil }

        var sslmode: String?
        for pair in query.split(separator: "&") {
            let equals = pair.firstIndex(of: "=") ?? pair.endIndex
            if sslmode == nil, pair[..<equals] == "sslmode" {
                sslmode = String(pair[equals...].dropFirst()).removingPercentEncoding ?? ""
            }
        }
        return (user, password, String(host), port, database, sslmode)
    }

    public func validate() throws(ConfigurationError) {
        guard (1...65535).contains(port) else { throw ConfigurationError("PostgreSQL port \(port) is out of range") }
        guard (1...1000).contains(maxConnections) else {
            throw ConfigurationError("MEDIAGW_DATABASE_MAX_CONNECTIONS must be between 1 and 1000")
        }
        guard connectTimeout >= .milliseconds(100), statementTimeout >= .milliseconds(100) else {
            throw ConfigurationError("PostgreSQL timeouts must be at least 100ms")
        }
        // [a-z_][a-z0-9_]{0,62} by bytes: a regular expression would load ICU into the gateway for one check
        let name = schema.utf8
        let digits = UInt8(ascii: "0")...UInt8(ascii: "9")
        let allowed = { (byte: UInt8) in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || digits.contains(byte) || byte == UInt8(ascii: "_")
        }
        guard let first = name.first, !digits.contains(first), name.count <= 63, name.allSatisfy(allowed) else {
            throw ConfigurationError("MEDIAGW_DATABASE_SCHEMA must be a lowercase SQL identifier")
        }
    }

    /// `user@host:port/database`, without the password.
    public var redacted: String { "\(username)@\(host):\(port)/\(database)" }
}
