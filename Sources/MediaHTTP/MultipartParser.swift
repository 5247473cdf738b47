import MediaCore
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The headers of one part of a `multipart/form-data` body.
public struct MultipartPartHeaders: Sendable, Hashable {
    /// The `name` of `Content-Disposition: form-data`.
    public var name: String?
    /// The `filename` of `Content-Disposition`: its presence makes the part a file.
    public var filename: String?
    /// The part's declared `Content-Type` (recorded, never trusted).
    public var contentType: String?
}

/// What a ``MultipartParser`` found in the bytes it was fed.
public enum MultipartEvent: Sendable, Equatable {
    case headers(MultipartPartHeaders)
    /// Bytes of the current part's body: slices of the input, never copies (but for a few bytes held back
    /// at the end of a chunk while they may start a delimiter).
    case body(ByteBuffer)
    case partEnd
    /// The closing delimiter was read.
    case end
}

/// Limits applied while parsing.
public struct MultipartLimits: Sendable, Hashable {
    public var maxParts: Int
    public var maxHeaderBytes: Int

    public init(maxParts: Int = 10, maxHeaderBytes: Int = 16 << 10) {
        self.maxParts = maxParts
        self.maxHeaderBytes = maxHeaderBytes
    }
}

/// A streaming `multipart/form-data` parser (RFC 7578 / RFC 2046): push chunks as they arrive, get events.
///
/// Body bytes are found by searching each chunk for the delimiter (`CRLF--boundary`) with `memchr` and are
/// handed out as slices of the chunk; at most `delimiter.count - 1` bytes are held back between chunks.
/// Headers are capped; the number of parts is capped. Errors are ``RequestError``s
/// (`malformedMultipart`, `tooManyParts`, `headerTooLarge`).
public struct MultipartParser: Sendable {
    private enum State: Sendable {
        case preamble
        case afterDelimiter
        case headers
        case body
        case epilogue
    }

    private let delimiter: [UInt8]  // CRLF "--" boundary
    private let limits: MultipartLimits
    private var state = State.preamble
    /// Small bytes carried between chunks: the preamble, a delimiter's tail, a header block, or the bytes
    /// held back at the end of a body chunk.
    private var carry: [UInt8] = []
    private var parts = 0
    private var preambleBytes = 0

    /// - Parameter boundary: the `boundary` parameter of the request's Content-Type.
    public init(boundary: String, limits: MultipartLimits = MultipartLimits()) throws(RequestError) {
        guard Self.isValidBoundary(boundary) else {
            throw RequestError(.malformedMultipart, "the multipart boundary is missing or invalid")
        }
        delimiter = Array("\r\n--\(boundary)".utf8)
        self.limits = limits
        // the first delimiter may start the body without a preceding CRLF: pretend one was seen
        carry = [0x0D, 0x0A]
    }

    /// RFC 2046: 1 to 70 characters from a restricted set, not ending in a space.
    static func isValidBoundary(_ boundary: String) -> Bool {
        let allowed = Set("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=? ".utf8)
        let bytes = Array(boundary.utf8)
        return (1...70).contains(bytes.count) && bytes.allSatisfy(allowed.contains) && bytes.last != 0x20
    }

    /// Whether the closing delimiter has been read.
    public var isComplete: Bool {
        if case .epilogue = state { return true }
        return false
    }

    /// Parses one more chunk of the body and appends what it found to `events`.
    public mutating func feed(_ chunk: ByteBuffer, into events: inout [MultipartEvent]) throws(RequestError) {
        var input = chunk
        while input.readableBytes > 0 {
            switch state {
            case .preamble:
                try preamble(&input)
            case .afterDelimiter:
                try afterDelimiter(&input, &events)
            case .headers:
                try headers(&input, &events)
            case .body:
                body(&input, &events)
            case .epilogue:
                return  // whatever follows the closing delimiter is ignored
            }
        }
    }

    /// The input ended. Throws if it ended before the closing delimiter.
    public func finish() throws(RequestError) {
        guard isComplete else {
            throw RequestError(.malformedMultipart, "the multipart body ended before its closing boundary")
        }
    }

    // MARK: States

    private mutating func preamble(_ input: inout ByteBuffer) throws(RequestError) {
        // look for the first delimiter in what was held plus the new bytes, consuming exactly up to its end
        let peek = input.getBytes(at: input.readerIndex, length: min(input.readableBytes, limits.maxHeaderBytes))!
        let combined = carry + peek
        if let position = Self.search(combined, delimiter) {
            input.moveReaderIndex(forwardBy: position + delimiter.count - carry.count)
            carry = []
            state = .afterDelimiter
            return
        }
        input.moveReaderIndex(forwardBy: peek.count)
        preambleBytes += peek.count
        guard preambleBytes <= limits.maxHeaderBytes else {
            throw RequestError(.malformedMultipart, "no multipart boundary found at the start of the body")
        }
        carry = Array(combined.suffix(delimiter.count - 1))
    }

    private mutating func afterDelimiter(_ input: inout ByteBuffer, _ events: inout [MultipartEvent]) throws(RequestError) {
        // after a delimiter: "--" closes the body; otherwise optional blanks, then CRLF and a part's headers
        while let byte = input.readInteger(as: UInt8.self) {
            carry.append(byte)
            if carry == [0x2D, 0x2D] {
                carry = []
                state = .epilogue
                events.append(.end)
                return
            }
            if carry == [0x2D] { continue }
            let rest = Array(carry.drop(while: { $0 == 0x20 || $0 == 0x09 }))
            if rest == [0x0D, 0x0A] {
                carry = [0x0D, 0x0A]  // the header block is searched for CRLF CRLF, so a part without headers works
                state = .headers
                return
            }
            guard rest.isEmpty || rest == [0x0D], carry.count <= 64 else {
                throw RequestError(.malformedMultipart, "a multipart boundary is followed by neither CRLF nor --")
            }
        }
    }

    private mutating func headers(_ input: inout ByteBuffer, _ events: inout [MultipartEvent]) throws(RequestError) {
        let separator: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A]
        let room = limits.maxHeaderBytes + 4 - carry.count
        let peek = input.getBytes(at: input.readerIndex, length: min(input.readableBytes, max(room, 1)))!
        let combined = carry + peek
        guard let end = Self.search(combined, separator, from: max(0, carry.count - 3)) else {
            guard combined.count <= limits.maxHeaderBytes + 4 else {
                throw RequestError(.headerTooLarge, "a part's headers are larger than \(limits.maxHeaderBytes) bytes")
            }
            input.moveReaderIndex(forwardBy: peek.count)
            carry = combined
            return
        }
        input.moveReaderIndex(forwardBy: end + separator.count - carry.count)
        parts += 1
        guard parts <= limits.maxParts else {
            throw RequestError(.tooManyParts, "a request may carry at most \(limits.maxParts) parts")
        }
        // the block starts with the CRLF that ended the delimiter line
        let block = end > 2 ? Array(combined[2..<end]) : []
        carry = []
        events.append(.headers(try Self.parseHeaders(block)))
        state = .body
    }

    private mutating func body(_ input: inout ByteBuffer, _ events: inout [MultipartEvent]) {
        // bytes held back from the previous chunk may be the start of a delimiter
        if !carry.isEmpty {
            let need = delimiter.count - carry.count
            let available = min(need, input.readableBytes)
            let next = input.getBytes(at: input.readerIndex, length: available)!
            if Array(delimiter[carry.count..<carry.count + available]) == next {
                if available == need {
                    input.moveReaderIndex(forwardBy: need)
                    carry = []
                    events.append(.partEnd)
                    state = .afterDelimiter
                    return
                }
                // still a prefix of the delimiter: hold on to it
                carry += next
                input.moveReaderIndex(forwardBy: available)
                return
            }
            // not a delimiter: the held bytes were body after all (only the first can start one: the
            // delimiter has a single CR, at its start)
            events.append(.body(ByteBuffer(bytes: carry)))
            carry = []
        }
        let found: Int? = input.withUnsafeReadableBytes { bytes in
            delimiter.withUnsafeBytes { Self.find($0, in: bytes) }
        }
        if let found {
            if found > 0 { events.append(.body(input.readSlice(length: found)!)) }
            input.moveReaderIndex(forwardBy: delimiter.count)
            events.append(.partEnd)
            state = .afterDelimiter
            return
        }
        // no delimiter: hold back the longest tail that could start one (it begins with the CR)
        let tailLength = min(delimiter.count - 1, input.readableBytes)
        let tail = input.getBytes(at: input.readerIndex + input.readableBytes - tailLength, length: tailLength)!
        var keep = 0
        for offset in tail.indices where tail[offset] == 0x0D && delimiter.starts(with: tail[offset...]) {
            keep = tail.count - offset
            break
        }
        let emit = input.readableBytes - keep
        if emit > 0 { events.append(.body(input.readSlice(length: emit)!)) }
        carry = input.readBytes(length: keep)!
    }

    // MARK: Helpers

    static func search(_ haystack: [UInt8], _ needle: [UInt8], from start: Int = 0) -> Int? {
        guard start >= 0, haystack.count - start >= needle.count else { return nil }
        return haystack.withUnsafeBytes { hay in
            needle.withUnsafeBytes { pin in
                find(pin, in: UnsafeRawBufferPointer(rebasing: hay[start...])).map { $0 + start }
            }
        }
    }

    /// The offset of the first occurrence of `needle` in `haystack`: `memchr` (vectorised in libc) finds
    /// each candidate first byte, `memcmp` checks the rest.
    static func find(_ needle: UnsafeRawBufferPointer, in haystack: UnsafeRawBufferPointer) -> Int? {
        guard let first = needle.first, needle.count <= haystack.count, let base = haystack.baseAddress else { return nil }
        let last = haystack.count - needle.count
        var offset = 0
        while offset <= last {
            guard let hit = memchr(base + offset, Int32(first), last - offset + 1) else { return nil }
            let position = base.distance(to: UnsafeRawPointer(hit))
            if memcmp(hit, needle.baseAddress!, needle.count) == 0 { return position }
            offset = position + 1
        }
        return nil
    }

    static func parseHeaders(_ block: [UInt8]) throws(RequestError) -> MultipartPartHeaders {
        var headers = MultipartPartHeaders()
        guard let text = String(validating: block, as: UTF8.self), !text.utf8.contains(0) else {
            throw RequestError(.malformedMultipart, "a part's headers are not valid UTF-8 text")
        }
        for line in text.split(separator: "\r\n") {
            guard let colon = line.firstIndex(of: ":") else {
                throw RequestError(.malformedMultipart, "a part has a header line without a colon")
            }
            let name = line[..<colon].trimmingOWS().lowercased()
            let value = line[line.index(after: colon)...].trimmingOWS()
            switch name {
            case "content-disposition":
                let parameters = parseParameters(value)
                guard parameters.type == "form-data" else {
                    throw RequestError(.malformedMultipart, "a part's Content-Disposition is not form-data")
                }
                headers.name = parameters.values["name"]
                headers.filename = parameters.values["filename*"].flatMap(decodeExtendedValue) ?? parameters.values["filename"]
            case "content-type":
                headers.contentType = value
            default:
                continue
            }
        }
        return headers
    }

    /// `type; key=value; key="quoted value"`.
    static func parseParameters(_ value: String) -> (type: String, values: [String: String]) {
        var values: [String: String] = [:]
        var characters = Substring(value)
        func readToken(until stops: Set<Character>) -> String {
            let end = characters.firstIndex(where: { stops.contains($0) }) ?? characters.endIndex
            defer { characters = characters[end...] }
            return characters[..<end].trimmingOWS()
        }
        let type = readToken(until: [";"]).lowercased()
        while characters.first == ";" {
            characters = characters.dropFirst()
            let key = readToken(until: ["=", ";"]).lowercased()
            guard characters.first == "=" else { continue }
            characters = characters.dropFirst().drop(while: { $0 == " " })
            var parsed = ""
            if characters.first == "\"" {
                characters = characters.dropFirst()
                while let character = characters.first, character != "\"" {
                    characters = characters.dropFirst()
                    if character == "\\", let escaped = characters.first {
                        parsed.append(escaped)
                        characters = characters.dropFirst()
                    } else {
                        parsed.append(character)
                    }
                }
                characters = characters.dropFirst()
                _ = readToken(until: [";"])
            } else {
                parsed = readToken(until: [";"])
            }
            if !key.isEmpty { values[key] = parsed }
        }
        return (type, values)
    }

    /// RFC 5987 `UTF-8''percent%20encoded`.
    static func decodeExtendedValue(_ value: String) -> String? {
        let parts = value.split(separator: "'", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].lowercased() == "utf-8" else { return nil }
        return String(parts[2]).removingPercentEncoding
    }
}
