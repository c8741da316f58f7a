namespace DriverAudit.Rules.Lists;

/// <summary>
/// Hashes from one list, by what they identify. A plain list does not say which hash a line is, so its
/// 64-digit hashes serve both as file SHA-256 and as Authenticode SHA-256; LOLDrivers lists say it.
/// Sets ignore case; values are stored lower-case.
/// </summary>
internal sealed class HashList
{
    public HashSet<string> FileSha256 { get; } = new(StringComparer.OrdinalIgnoreCase);
    public HashSet<string> AuthentihashSha256 { get; } = new(StringComparer.OrdinalIgnoreCase);
    public HashSet<string> AuthentihashSha1 { get; } = new(StringComparer.OrdinalIgnoreCase);

    public static HashList Empty { get; } = new();

    public int Count => FileSha256.Count + AuthentihashSha256.Count + AuthentihashSha1.Count;

    public static bool IsHex(ReadOnlySpan<char> text, int length) =>
        text.Length == length && !text.ContainsAnyExcept("0123456789abcdefABCDEF");
}
