import Glibc
import MediaCore

extension BlobStoreError {
    /// Translates a negative librados return code into a typed error.
    static func rados(_ rc: Int32, _ operation: String, _ subject: any CustomStringConvertible) -> BlobStoreError {
        let errno = -rc
        let reason = String(cString: strerror(errno))
        let message = "\(operation) \(subject): \(reason) (errno \(errno))"
        switch errno {
        case ENOENT: return BlobStoreError(.notFound, message)
        case EEXIST: return BlobStoreError(.alreadyExists, message)
        case ETIMEDOUT: return BlobStoreError(.timedOut, message)
        case ENOSPC, EDQUOT: return BlobStoreError(.noSpace, message)
        case EPERM, EACCES: return BlobStoreError(.permissionDenied, message)
        case ENOTCONN, ESHUTDOWN, ECONNREFUSED: return BlobStoreError(.unavailable, message)
        case EINVAL, ENAMETOOLONG: return BlobStoreError(.invalidArgument, message)
        // a failed extended-attribute comparison: the writer's claim was taken over
        case ECANCELED: return BlobStoreError(.superseded, message)
        default: return BlobStoreError(.other, message)
        }
    }
}
