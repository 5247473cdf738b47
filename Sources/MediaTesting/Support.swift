import Foundation
import MediaCore
import NIOCore
import Testing

/// Deterministic test bytes: the same seed always gives the same content.
public func patternBytes(count: Int, seed: UInt64) -> [UInt8] {
    var state = seed &+ 0x9E37_79B9_7F4A_7C15
    var bytes = [UInt8](repeating: 0, count: count)
    for index in 0..<count {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        bytes[index] = UInt8(truncatingIfNeeded: state >> 33)
    }
    return bytes
}

/// A JPEG-looking payload of `count` bytes: JPEG magic, then filler.
/// The ``MediaError`` code `body` throws, `nil` when it succeeds, `.internal` for any other error.
public func mediaErrorCode(_ body: () async throws -> Void) async -> MediaError.Code? {
    do {
        try await body()
        return nil
    } catch let error as MediaError {
        return error.code
    } catch {
        return .internal
    }
}

public func fakeJPEG(_ count: Int, seed: UInt64 = 1) -> [UInt8] {
    [0xFF, 0xD8, 0xFF, 0xE0] + patternBytes(count: max(0, count - 4), seed: seed)
}

extension Array where Element: Sendable {
    /// The elements as an async sequence (a source for streaming writes).
    public var async: AsyncStream<Element> {
        AsyncStream { continuation in
            for element in self { continuation.yield(element) }
            continuation.finish()
        }
    }
}

/// `content` as pieces of `size` bytes, as an HTTP body arrives.
public func pieces(_ content: [UInt8], size: Int) -> [ByteBuffer] {
    stride(from: 0, to: content.count, by: size).map { ByteBuffer(bytes: content[$0..<min($0 + size, content.count)]) }
}

/// Expects `body` to throw a ``BlobStoreError`` with `code`.
public func expectBlobError(
    _ code: BlobStoreError.Code,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () async throws -> Void
) async {
    do {
        try await body()
        Issue.record("expected \(code), nothing was thrown", sourceLocation: sourceLocation)
    } catch let error as BlobStoreError {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected BlobStoreError \(code), got \(error)", sourceLocation: sourceLocation)
    }
}

/// Expects `body` to throw a ``MetadataStoreError`` with `code`.
public func expectMetadataError(
    _ code: MetadataStoreError.Code,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () async throws -> Void
) async {
    do {
        try await body()
        Issue.record("expected \(code), nothing was thrown", sourceLocation: sourceLocation)
    } catch let error as MetadataStoreError {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected MetadataStoreError \(code), got \(error)", sourceLocation: sourceLocation)
    }
}

/// A unique object key for a test.
public func uniqueKey(_ label: String = #function) -> String {
    let name = label.prefix(while: { $0 != "(" })
    return "test-\(name)-\(UUID().uuidString.lowercased())"
}

/// A conformance suite of a port: checks by name, written once and run against each implementation
/// (`@Test(arguments: Suite.checks)`, then ``run(_:)`` with the check's name).
public protocol ConformanceSuite: Sendable {
    /// Each check's body, by its name.
    static var table: [String: @Sendable (Self) async throws -> Void] { get }
}

extension ConformanceSuite {
    /// Every check, by name: run each with ``run(_:)``.
    public static var checks: [String] { Array(table.keys).sorted() }

    /// Runs one check; an unknown name is a test failure.
    public func run(_ check: String) async throws {
        guard let body = Self.table[check] else {
            Issue.record("no conformance check \(check)")
            return
        }
        try await body(self)
    }
}
