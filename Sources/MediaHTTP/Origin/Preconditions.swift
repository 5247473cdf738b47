import Foundation

/// The parts of HTTP's conditional and range requests (RFC 9110 §13–14) that the origin evaluates; pure
/// functions of header values, so that every rule is tested without a server.
enum EntityTags {
    /// Whether an `If-None-Match` or `If-Match` list names `etag` (a quoted strong tag). `If-None-Match`
    /// compares weakly (a `W/` prefix is ignored); `If-Match` strongly (a weak tag never matches).
    static func list(_ header: String, matches etag: String, weak: Bool) -> Bool {
        for item in header.split(separator: ",") {
            let tag = item.trimmingOWS()
            if tag == "*" { return true }
            if tag.hasPrefix("W/") {
                if weak, tag.dropFirst(2) == etag { return true }
            } else if tag == etag {
                return true
            }
        }
        return false
    }
}

/// What a `Range` header asks of an entity of a given size.
enum RangeRequest: Equatable {
    /// No range, or one the origin ignores (not `bytes`, malformed): send the whole entity with 200.
    case whole
    /// Several ranges: the origin answers them with the whole entity (200), never `multipart/byteranges`.
    case several
    /// One satisfiable range: 206.
    case single(Range<Int64>)
    /// No range can be satisfied: 416 with `Content-Range: bytes */size`.
    case unsatisfiable

    /// The most ranges the origin reads in a header; more are answered with the whole entity.
    static let maxRanges = 32

    /// Evaluates a `Range` header value for an entity of `size` bytes.
    static func evaluate(_ header: String?, size: Int64) -> RangeRequest {
        guard let header else { return .whole }
        let trimmed = header.trimmingOWS()
        guard trimmed.utf8.count <= 1024, let equals = trimmed.firstIndex(of: "="),
            trimmed[..<equals].trimmingOWS().lowercased() == "bytes"
        else { return .whole }
        let specs = trimmed[trimmed.index(after: equals)...].split(separator: ",", omittingEmptySubsequences: false)
            .map { $0.trimmingOWS() }
        guard !specs.isEmpty, specs.count <= maxRanges else { return .whole }
        var satisfiable: [Range<Int64>] = []
        for spec in specs {
            guard let parsed = parse(spec) else { return .whole }  // one bad spec: the header is ignored
            if let range = parsed.resolve(size: size) { satisfiable.append(range) }
        }
        switch satisfiable.count {
        case 0: return .unsatisfiable
        case 1 where specs.count == 1: return .single(satisfiable[0])
        default: return .several
        }
    }

    private enum Spec {
        case from(Int64, through: Int64?)
        case suffix(Int64)

        func resolve(size: Int64) -> Range<Int64>? {
            switch self {
            case .from(let first, let last):
                guard first < size else { return nil }
                let end = min(last.map { $0 == .max ? $0 : $0 + 1 } ?? size, size)
                return first..<end
            case .suffix(let length):
                guard length > 0, size > 0 else { return nil }
                return max(0, size - length)..<size
            }
        }
    }

    private static func parse(_ spec: String) -> Spec? {
        guard let dash = spec.firstIndex(of: "-") else { return nil }
        let first = spec[..<dash]
        let last = spec[spec.index(after: dash)...]
        if first.isEmpty {
            guard let length = number(last) else { return nil }
            return .suffix(length)
        }
        guard let start = number(first) else { return nil }
        if last.isEmpty { return .from(start, through: nil) }
        guard let end = number(last), end >= start else { return nil }
        return .from(start, through: end)
    }

    /// A run of ASCII digits; values past `Int64.max` saturate (they are beyond any object anyway).
    private static func number(_ text: Substring) -> Int64? {
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        return Int64(text) ?? .max
    }
}
