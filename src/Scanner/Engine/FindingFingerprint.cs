using System.Security.Cryptography;
using System.Text;

namespace DriverAudit.Scanner.Engine;

/// <summary>
/// partialFingerprints.primaryLocationLineHash from stable facts only. Without it GitHub would hash
/// "line 1" of the binary — the DOS stub, identical in every PE — and alerts would collapse.
/// </summary>
internal static class FindingFingerprint
{
    /// <param name="uri">Repository-relative path of the artifact (the dump for dump modules).</param>
    /// <param name="module">Dump module base name, or null for files. Never the module's address.</param>
    /// <param name="anchorKey">Stable anchor, e.g. "ntoskrnl.exe!ExAllocatePool".</param>
    public static string Compute(string ruleId, string uri, string? module, string anchorKey)
    {
        var identity = $"v1\n{ruleId}\n{uri.Replace('\\', '/')}\n{module?.ToLowerInvariant()}\n{anchorKey}";
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes(identity), hash);
        // GitHub's own fingerprints look like "<hex>:<occurrence>"; anchors are unique per rule and artifact.
        return Convert.ToHexStringLower(hash[..16]) + ":1";
    }
}
