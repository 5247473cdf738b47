import COpenSSL
import MediaCore

/// ``ResumableSHA256`` on OpenSSL's `libcrypto` (the SHA extensions of the CPU where it has them). Its
/// state is saved as a versioned record of the context's fields, checked when taken up again: the byte
/// count must be the offset the caller expects and the partial block must agree with it.
public struct OpenSSLSHA256: ResumableSHA256 {
    public init() {}

    public func start() -> any ResumableSHA256State {
        var context = SHA256_CTX()
        SHA256_Init(&context)
        return State(context: context)
    }

    public func resume(_ saved: [UInt8], at offset: Int64) -> (any ResumableSHA256State)? {
        State(saved: saved, offset: offset)
    }

    struct State: ResumableSHA256State {
        var context: SHA256_CTX

        /// The record's layout version, its first byte.
        static let version: UInt8 = 1
        /// Version, the eight state words, the two words of the bit count, the partial block's length
        /// (little-endian words), then the partial block's 64 bytes.
        static let savedLength = 1 + 8 * 4 + 2 * 4 + 4 + 64

        init(context: SHA256_CTX) {
            self.context = context
        }

        init?(saved: [UInt8], offset: Int64) {
            guard saved.count == Self.savedLength, saved[0] == Self.version, offset >= 0 else { return nil }
            var reader = saved.dropFirst()
            func word() -> UInt32 {
                defer { reader = reader.dropFirst(4) }
                return reader.prefix(4).enumerated().reduce(0) { $0 | UInt32($1.element) << (8 * UInt32($1.offset)) }
            }
            var context = SHA256_CTX()
            SHA256_Init(&context)
            withUnsafeMutableBytes(of: &context.h) { words in
                for index in 0..<8 { words.storeBytes(of: word(), toByteOffset: index * 4, as: UInt32.self) }
            }
            context.Nl = word()
            context.Nh = word()
            context.num = word()
            let bits = UInt64(context.Nh) << 32 | UInt64(context.Nl)
            guard bits == UInt64(offset) &* 8, offset < Int64(1) << 60, Int64(context.num) == offset % 64 else { return nil }
            withUnsafeMutableBytes(of: &context.data) { block in
                block.copyBytes(from: reader.prefix(64))
            }
            self.context = context
        }

        var byteCount: Int64 { Int64(UInt64(context.Nh) << 32 | UInt64(context.Nl)) / 8 }

        mutating func update(_ bytes: UnsafeRawBufferPointer) {
            guard let base = bytes.baseAddress, bytes.count > 0 else { return }
            SHA256_Update(&context, base, bytes.count)
        }

        func saved() -> [UInt8] {
            var record: [UInt8] = [Self.version]
            record.reserveCapacity(Self.savedLength)
            func append(_ word: UInt32) {
                for shift in stride(from: 0, to: 32, by: 8) { record.append(UInt8(truncatingIfNeeded: word >> UInt32(shift))) }
            }
            withUnsafeBytes(of: context.h) { words in
                for index in 0..<8 { append(words.load(fromByteOffset: index * 4, as: UInt32.self)) }
            }
            append(context.Nl)
            append(context.Nh)
            append(context.num)
            withUnsafeBytes(of: context.data) { record.append(contentsOf: $0.prefix(64)) }
            return record
        }

        func hexDigest() -> String {
            var context = context
            var digest = [UInt8](repeating: 0, count: Int(SHA256_DIGEST_LENGTH))
            SHA256_Final(&digest, &context)
            return digest.hexEncoded
        }
    }
}
