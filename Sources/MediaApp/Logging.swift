import Foundation
import Logging
import OTel
import Synchronization

/// How every command logs: to standard error, at the configured level, as text or as JSON lines.
public enum MediaLogging {
    /// Bootstraps the logging system once per process and returns the root logger.
    public static func bootstrap(_ configuration: LoggingConfiguration) -> Logger {
        install(configuration, metadataProvider: nil)
    }

    /// Bootstraps the logging system and, when `tracing` enables it, the tracer, once per process, and
    /// returns the root logger. With tracing on, every line logged inside a span carries its `trace_id` and
    /// `span_id`.
    public static func bootstrap(_ configuration: LoggingConfiguration, tracing: TracingConfiguration) throws(ConfigurationError) -> Logger {
        let logger = install(configuration, metadataProvider: tracing.enabled ? OTel.makeLoggingMetadataProvider() : nil)
        do {
            try MediaTracing.bootstrap(tracing, logger: logger)
        } catch {
            throw ConfigurationError("OTEL_*: the tracer cannot start: \(error)")
        }
        return logger
    }

    private static func install(_ configuration: LoggingConfiguration, metadataProvider: Logger.MetadataProvider?) -> Logger {
        LoggingSystem.bootstrap(
            { label, provider in
                switch configuration.format {
                case .text:
                    var handler = StreamLogHandler.standardError(label: label, metadataProvider: provider)
                    handler.logLevel = configuration.level
                    return handler
                case .json:
                    var handler = JSONLogHandler(label: label, metadataProvider: provider, write: JSONLogHandler.standardError)
                    handler.logLevel = configuration.level
                    return handler
                }
            },
            metadataProvider: metadataProvider
        )
        return Logger(label: "mediagw")
    }
}

/// One JSON object per line: `time` (RFC 3339, milliseconds, UTC), `level`, `logger`, `source`, `message`,
/// and every metadata key (dotted: `upload_set.id`, `hb.request.id`, `ceph.address`, …) as a field of its
/// own, beside the fixed ones. Values are strings, or arrays and objects of them. A field the message
/// shares with the fixed ones keeps the fixed one.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    public var metadataProvider: Logger.MetadataProvider?
    let label: String
    let write: @Sendable (String) -> Void

    /// - Parameter write: takes one whole line, newline included.
    public init(label: String, metadataProvider: Logger.MetadataProvider? = nil, write: @escaping @Sendable (String) -> Void) {
        self.label = label
        self.metadataProvider = metadataProvider
        self.write = write
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    static let fixedFields: Set = ["time", "level", "logger", "source", "message"]

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let explicit = event.metadata { merged.merge(explicit) { $1 } }
        var line = "{\"time\":"
        Self.append(string: Self.timestamp(Date()), to: &line)
        line += ",\"level\":"
        Self.append(string: event.level.rawValue, to: &line)
        line += ",\"logger\":"
        Self.append(string: label, to: &line)
        line += ",\"source\":"
        Self.append(string: event.source, to: &line)
        line += ",\"message\":"
        Self.append(string: event.message.description, to: &line)
        for key in merged.keys.sorted() where !Self.fixedFields.contains(key) {
            line += ","
            Self.append(string: key, to: &line)
            line += ":"
            Self.append(value: merged[key]!, to: &line)
        }
        line += "}\n"
        write(line)
    }

    static func append(value: Logger.Metadata.Value, to line: inout String) {
        switch value {
        case .string(let string): append(string: string, to: &line)
        case .stringConvertible(let convertible): append(string: convertible.description, to: &line)
        case .array(let values):
            line += "["
            for (index, element) in values.enumerated() {
                if index > 0 { line += "," }
                append(value: element, to: &line)
            }
            line += "]"
        case .dictionary(let values):
            line += "{"
            for (index, key) in values.keys.sorted().enumerated() {
                if index > 0 { line += "," }
                append(string: key, to: &line)
                line += ":"
                append(value: values[key]!, to: &line)
            }
            line += "}"
        }
    }

    /// A JSON string: quotes, backslashes and every control character escaped; the rest as UTF-8.
    static func append(string: String, to line: inout String) {
        line += "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": line += "\\\""
            case "\\": line += "\\\\"
            case "\n": line += "\\n"
            case "\r": line += "\\r"
            case "\t": line += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F || (0x2028...0x2029).contains(scalar.value):
                line += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count) + String(scalar.value, radix: 16)
            default: line.unicodeScalars.append(scalar)
            }
        }
        line += "\""
    }

    static func timestamp(_ date: Date) -> String {
        date.formatted(.iso8601.year().month().day().dateSeparator(.dash).time(includingFractionalSeconds: true).timeSeparator(.colon))
            + "Z"
    }

    private static let standardErrorLock = Mutex(())

    /// Writes a line to standard error whole: lines of concurrent log calls never interleave.
    public static let standardError: @Sendable (String) -> Void = { line in
        standardErrorLock.withLock { _ in
            var line = line
            line.withUTF8 { bytes in
                var offset = 0
                while offset < bytes.count {
                    let written = Foundation.write(2, bytes.baseAddress! + offset, bytes.count - offset)
                    if written <= 0 { break }
                    offset += written
                }
            }
        }
    }
}
