import CRados
import MediaCore
import NIOConcurrencyHelpers

/// One librados AIO completion bridged to Swift concurrency. librados calls back on its own finisher
/// thread; the waiting task is resumed from there, so no thread ever blocks on a RADOS operation.
final class RadosCompletion: @unchecked Sendable {
    private enum State {
        case pending
        case waiting(CheckedContinuation<Int32, Never>)
        case done(Int32)
    }

    /// Set once, right after creation, before the completion is shared.
    private(set) var handle: rados_completion_t?
    private let state = NIOLockedValueBox(State.pending)

    private init() {}

    /// Creates a completion. The callback owns one reference to it until librados fires; if the operation is
    /// never submitted, call ``abandon()`` to give that reference back.
    static func make() throws(BlobStoreError) -> RadosCompletion {
        let completion = RadosCompletion()
        let opaque = Unmanaged.passRetained(completion).toOpaque()
        var handle: rados_completion_t?
        let rc = rados_aio_create_completion2(opaque, radosCompletionCallback, &handle)
        guard rc == 0, let handle else {
            Unmanaged<RadosCompletion>.fromOpaque(opaque).release()
            throw BlobStoreError.rados(rc, "create completion", "librados")
        }
        completion.handle = handle
        return completion
    }

    /// The operation was not submitted: release the completion and the callback's reference.
    func abandon() {
        rados_aio_release(handle)
        Unmanaged<RadosCompletion>.passUnretained(self).release()
    }

    fileprivate func complete(_ rc: Int32) {
        let waiter: CheckedContinuation<Int32, Never>? = state.withLockedValue { state in
            switch state {
            case .waiting(let continuation):
                state = .done(rc)
                return continuation
            case .pending, .done:
                state = .done(rc)
                return nil
            }
        }
        waiter?.resume(returning: rc)
    }

    /// Suspends until librados has completed the operation and returns its return value.
    func wait() async -> Int32 {
        await withCheckedContinuation { continuation in
            let ready: Int32? = state.withLockedValue { state in
                switch state {
                case .done(let rc): return rc
                case .pending:
                    state = .waiting(continuation)
                    return nil
                case .waiting:
                    preconditionFailure("a RADOS completion is awaited once")
                }
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }
}

private let radosCompletionCallback: rados_callback_t = { completion, argument in
    guard let argument else { return }
    let box = Unmanaged<RadosCompletion>.fromOpaque(argument).takeRetainedValue()
    let rc = rados_aio_get_return_value(completion)
    // librados holds its own reference while the callback runs, so releasing ours here is safe.
    rados_aio_release(completion)
    box.complete(rc)
}

/// Keeps memory that librados writes into after submission alive and in one place until completion.
final class RadosOutput<Value>: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Value>

    init(_ initial: Value) {
        pointer = .allocate(capacity: 1)
        pointer.initialize(to: initial)
    }

    var value: Value { pointer.pointee }

    deinit {
        pointer.deinitialize(count: 1)
        pointer.deallocate()
    }
}
