namespace DriverAudit.Rules.Facts;

/// <summary>
/// The documented names of derived booleans a rule can test with <c>characteristic:</c>.
/// The rule validator refuses any other name; the scanner answers each one.
/// </summary>
public static class Characteristics
{
    /// <summary>The import address table (data directory 12, or the first thunk array) lies in an executable section.</summary>
    public const string IatInExecutableSection = "iat-in-executable-section";
    /// <summary>The load configuration names a security cookie (/GS).</summary>
    public const string HasStackCookie = "has-stack-cookie";
    /// <summary>Control Flow Guard instrumented (IMAGE_DLLCHARACTERISTICS_GUARD_CF and guard flags).</summary>
    public const string Cfg = "cfg";
    /// <summary>IMAGE_DLLCHARACTERISTICS_FORCE_INTEGRITY.</summary>
    public const string ForceIntegrity = "force-integrity";
    /// <summary>IMAGE_DLLCHARACTERISTICS_NX_COMPAT.</summary>
    public const string NxCompat = "nx-compat";
    /// <summary>A certificate table (Authenticode signature) is present.</summary>
    public const string Signed = "signed";
    /// <summary>The code looks packed or encrypted (packer section names, high-entropy executable sections, entry point outside code).</summary>
    public const string Packed = "packed";

    public static IReadOnlySet<string> Known { get; } = new HashSet<string>(StringComparer.Ordinal)
    {
        IatInExecutableSection, HasStackCookie, Cfg, ForceIntegrity, NxCompat, Signed, Packed,
    };
}
