namespace Cairn.Core;

/// <summary>
/// An expected failure with a stable code (see docs/errors.md). The message says what was wrong and where;
/// <see cref="Hint"/> says what to do about it.
/// </summary>
public sealed class CairnException : Exception
{
    public CairnException(ErrorCode code, string message, string? hint = null, Exception? inner = null)
        : base(message, inner)
    {
        Code = code;
        Hint = hint;
    }

    public CairnException() : this(ErrorCode.Internal, "internal error") { }

    public CairnException(string message) : this(ErrorCode.Internal, message) { }

    public CairnException(string message, Exception innerException) : this(ErrorCode.Internal, message, null, innerException) { }

    public ErrorCode Code { get; }

    public string? Hint { get; }

    /// <summary>The code as printed and documented, e.g. CAIRN-E0201.</summary>
    public string CodeName => ErrorCodes.Name(Code);
}
