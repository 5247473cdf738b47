import MediaCore
import NIOCore

/// Reads a `multipart/form-data` request body part by part, as it arrives. One reader, one task: the part
/// bodies it hands out pull from the same underlying stream, in order.
public final class MultipartReader<Body: AsyncSequence> where Body.Element == ByteBuffer {
    private var source: Body.AsyncIterator
    private var parser: MultipartParser
    private var pending: [MultipartEvent] = []
    private var position = 0
    private var inputEnded = false
    private var inPart = false
    /// A parse error met in a chunk whose earlier events (the end of a good part) are still to be handed out.
    private var deferredError: RequestError?
    /// Bytes pulled from the request so far, for the request size cap.
    public private(set) var bytesRead: Int64 = 0
    let maxBytes: Int64

    public init(body: Body, boundary: String, limits: MultipartLimits, maxBytes: Int64) throws(RequestError) {
        self.source = body.makeAsyncIterator()
        self.parser = try MultipartParser(boundary: boundary, limits: limits)
        self.maxBytes = maxBytes
    }

    /// Whether the whole body, up to its closing delimiter, has been read.
    public var isComplete: Bool { parser.isComplete }

    /// Whether the reader is inside a part (its body not read to its end).
    public var isInsidePart: Bool { inPart }

    /// The next event, pulling and parsing more input as needed; `nil` after the end. A parse error is thrown
    /// only after the events parsed before it: the part that ended well before a bad one is whole.
    func nextEvent() async throws -> MultipartEvent? {
        while position == pending.count {
            pending.removeAll(keepingCapacity: true)
            position = 0
            if let deferredError {
                self.deferredError = nil
                throw deferredError
            }
            if parser.isComplete || inputEnded { return nil }
            guard let chunk = try await source.next() else {
                inputEnded = true
                try parser.finish()
                return nil
            }
            bytesRead += Int64(chunk.readableBytes)
            guard bytesRead <= maxBytes else {
                throw RequestError(.requestTooLarge, "the request is larger than \(maxBytes) bytes")
            }
            do {
                try parser.feed(chunk, into: &pending)
            } catch {
                guard pending.isEmpty else {
                    deferredError = error
                    continue
                }
                throw error
            }
        }
        defer { position += 1 }
        return pending[position]
    }

    /// The next part, after skipping whatever is left of the current one; `nil` at the end of the body.
    public func nextPart() async throws -> (headers: MultipartPartHeaders, body: PartBody)? {
        while let event = try await nextEvent() {
            switch event {
            case .headers(let headers):
                inPart = true
                return (headers, PartBody(reader: self))
            case .body, .partEnd:
                continue
            case .end:
                return nil
            }
        }
        return nil
    }

    /// The body of the current part; it ends at the part's end.
    public struct PartBody: AsyncSequence {
        public typealias Element = ByteBuffer
        let reader: MultipartReader

        public struct AsyncIterator: AsyncIteratorProtocol {
            let reader: MultipartReader
            public mutating func next() async throws -> ByteBuffer? { try await reader.nextBodyChunk() }
        }

        public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(reader: reader) }
    }

    fileprivate func nextBodyChunk() async throws -> ByteBuffer? {
        guard inPart else { return nil }
        while let event = try await nextEvent() {
            switch event {
            case .body(let bytes):
                return bytes
            case .partEnd:
                inPart = false
                return nil
            case .headers, .end:
                preconditionFailure("the parser ends a part before it starts another")
            }
        }
        inPart = false
        throw RequestError(.malformedMultipart, "the multipart body ended in the middle of a part")
    }
}
