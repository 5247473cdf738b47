import MediaConcurrency
import MediaCore
import PostgresNIO

extension MetadataStoreError {
    /// Translates a PostgresNIO failure into a typed error whose message names the cause in one line and
    /// never includes the password or bound values.
    static func translating(_ error: any Error, _ operation: String, database: String) -> MetadataStoreError {
        switch error {
        case let error as MetadataStoreError:
            return error
        case let error as PostgresTransactionError:
            // the first failure is the one that matters; the rollback of a failed statement rarely fails
            let first = error.beginError ?? error.closureError ?? error.commitError ?? error.rollbackError
            return first.map { translating($0, operation, database: database) }
                ?? MetadataStoreError(.other, "\(operation): transaction failed")
        case is DeadlineExceeded:
            return MetadataStoreError(.timedOut, "\(operation): PostgreSQL at \(database) did not answer in time")
        case is CancellationError:
            return MetadataStoreError(.unavailable, "\(operation): cancelled")
        case let error as PSQLError:
            let state = error.serverInfo?[.sqlState] ?? ""
            let serverMessage = error.serverInfo?[.message] ?? ""
            switch (error.code, state) {
            case (.server, "28P01"), (.server, "28000"):
                return MetadataStoreError(
                    .unavailable,
                    "PostgreSQL at \(database) refused the login: \(serverMessage)",
                    cause: SendableDescription(error)
                )
            case (.server, "3D000"):
                return MetadataStoreError(.unavailable, "PostgreSQL database does not exist: \(serverMessage)")
            case (.server, "23505"), (.server, "40001"), (.server, "40P01"):
                return MetadataStoreError(.conflict, "\(operation): \(serverMessage)")
            case (.server, "23503"):
                return MetadataStoreError(.notFound, "\(operation): \(serverMessage)")
            case (.server, "25006"):
                // read_only_sql_transaction: this connection reaches a standby (a primary demoted by a failover)
                return MetadataStoreError(.unavailable, "\(operation): PostgreSQL is read-only here (a failover?): \(serverMessage)")
            case (.server, "57014"), (.server, "55P03"):
                return MetadataStoreError(.timedOut, "\(operation): \(serverMessage)")
            case (.server, let state) where state.hasPrefix("08") || state.hasPrefix("53") || state.hasPrefix("57P"):
                return MetadataStoreError(.unavailable, "\(operation): PostgreSQL is unavailable: \(serverMessage)")
            case (.server, _):
                return MetadataStoreError(.other, "\(operation): \(serverMessage) (SQLSTATE \(state))")
            case (.connectionError, _), (.serverClosedConnection, _), (.clientClosedConnection, _),
                (.uncleanShutdown, _), (.poolClosed, _), (.sslUnsupported, _), (.failedToAddSSLHandler, _):
                return MetadataStoreError(.unavailable, "\(operation): cannot reach PostgreSQL at \(database) (\(reason(error.underlying)))")
            case (.queryCancelled, _):
                return MetadataStoreError(.timedOut, "\(operation): query cancelled")
            default:
                return MetadataStoreError(.other, "\(operation): \(error.code)")
            }
        default:
            return MetadataStoreError(.unavailable, "\(operation): cannot reach PostgreSQL at \(database): \(error)")
        }
    }
}

extension MetadataStoreError {
    /// Whether `error` is a deadlock (`40P01`) or a serialization failure (`40001`): PostgreSQL rolled the
    /// whole transaction back, and running it again is the documented answer.
    static func isRetryableConflict(_ error: any Error) -> Bool {
        switch error {
        case let error as PostgresTransactionError:
            let first = error.beginError ?? error.closureError ?? error.commitError
            return first.map(isRetryableConflict) ?? false
        case let error as PSQLError:
            let state = error.serverInfo?[.sqlState] ?? ""
            return error.code == .server && (state == "40P01" || state == "40001")
        default:
            return false
        }
    }
}

/// A short reason for a connection failure, without the transport's internals.
private func reason(_ underlying: (any Error)?) -> String {
    guard let underlying else { return "connection closed" }
    let text = String(describing: underlying)
    for (needle, reason) in [
        ("Connection refused", "connection refused"), ("timed out", "connect timed out"),
        ("Connection reset", "connection reset"), ("No route", "no route to host"),
    ] where text.contains(needle) {
        return reason
    }
    return String(text.prefix(160))
}

/// A non-Sendable error kept as its description, so that typed errors stay Sendable.
struct SendableDescription: Error, Sendable, CustomStringConvertible {
    let description: String
    init(_ error: any Error) { description = String(describing: error) }
}
