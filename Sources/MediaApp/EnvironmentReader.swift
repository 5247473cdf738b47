import Foundation
import MediaCore

/// Reads typed settings from environment variables, with one clear error per bad value.
public struct EnvironmentReader: Sendable {
    public let values: [String: String]

    public init(_ values: [String: String] = ProcessInfo.processInfo.environment) {
        self.values = values
    }

    /// A non-empty string, or `nil` when unset or empty.
    public func string(_ name: String) -> String? {
        guard let value = values[name]?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
        return value
    }

    public func string(_ name: String, default defaultValue: String) -> String {
        string(name) ?? defaultValue
    }

    public func requiredString(_ name: String) throws(ConfigurationError) -> String {
        guard let value = string(name) else { throw ConfigurationError("\(name) is not set") }
        return value
    }

    public func int(_ name: String, default defaultValue: Int) throws(ConfigurationError) -> Int {
        guard let raw = string(name) else { return defaultValue }
        guard let value = Int(raw) else { throw ConfigurationError("\(name)=\(raw) is not a whole number") }
        return value
    }

    /// A byte count: a whole number, optionally with a KiB/MiB/GiB (or K/M/G) suffix.
    public func bytes(_ name: String, default defaultValue: Int64) throws(ConfigurationError) -> Int64 {
        guard let raw = string(name) else { return defaultValue }
        guard let value = Self.parseBytes(raw) else {
            throw ConfigurationError("\(name)=\(raw) is not a byte count (examples: 1048576, 512KiB, 10MiB)")
        }
        return value
    }

    /// A duration in seconds (fractions allowed), or with an `ms`, `s`, `m` or `h` suffix.
    public func duration(_ name: String, default defaultValue: Duration) throws(ConfigurationError) -> Duration {
        guard let raw = string(name) else { return defaultValue }
        guard let value = Self.parseDuration(raw) else {
            throw ConfigurationError("\(name)=\(raw) is not a duration (examples: 10, 2.5s, 500ms, 24h)")
        }
        return value
    }

    public func bool(_ name: String, default defaultValue: Bool) throws(ConfigurationError) -> Bool {
        guard let raw = string(name)?.lowercased() else { return defaultValue }
        switch raw {
        case "1", "true", "yes", "on": return true
        case "0", "false", "no", "off": return false
        default: throw ConfigurationError("\(name)=\(raw) is not a boolean (true/false)")
        }
    }

    static func parseBytes(_ raw: String) -> Int64? {
        let units: [(String, Int64)] = [
            ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10), ("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10), ("B", 1),
        ]
        for (suffix, factor) in units where raw.hasSuffix(suffix) {
            guard let number = Int64(raw.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)), number >= 0 else { return nil }
            let (product, overflow) = number.multipliedReportingOverflow(by: factor)
            return overflow ? nil : product
        }
        guard let number = Int64(raw), number >= 0 else { return nil }
        return number
    }

    static func parseDuration(_ raw: String) -> Duration? {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86_400)]
        for (suffix, factor) in units where raw.hasSuffix(suffix) {
            guard let number = Double(raw.dropLast(suffix.count)), number >= 0, number.isFinite else { return nil }
            return .milliseconds(Int64((number * factor * 1000).rounded()))
        }
        guard let number = Double(raw), number >= 0, number.isFinite else { return nil }
        return .milliseconds(Int64((number * 1000).rounded()))
    }
}
