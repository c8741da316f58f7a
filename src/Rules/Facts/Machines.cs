namespace DriverAudit.Rules.Facts;

/// <summary>CPU family of an image, from IMAGE_FILE_HEADER.Machine.</summary>
public enum PeMachine { Other, X86, X64, Arm64, Arm }

/// <summary>
/// Machine and subsystem values and their names, defined once: the scanner names what it read with them, rules
/// name what they ask for with them (<c>header: {machine: x64}</c>), and the engine compares the numbers.
/// </summary>
public static class MachineNames
{
    /// <summary>The family of a raw IMAGE_FILE_HEADER.Machine value.</summary>
    public static PeMachine Family(ushort value) => value switch
    {
        0x014c => PeMachine.X86,
        0x8664 => PeMachine.X64,
        0xAA64 => PeMachine.Arm64,
        0x01c0 or 0x01c4 => PeMachine.Arm,
        _ => PeMachine.Other,
    };

    /// <summary>"x86", "x64", "arm64", "arm", or "0x{value:x4}" for anything else.</summary>
    public static string Name(ushort value) => Family(value) switch
    {
        PeMachine.X86 => "x86",
        PeMachine.X64 => "x64",
        PeMachine.Arm64 => "arm64",
        PeMachine.Arm => "arm",
        _ => $"0x{value:x4}",
    };

    /// <summary>How messages name the machine: "x64", "ARM64", "ARM32", "IA64", "machine 0x01c2".</summary>
    public static string Label(ushort value) => Family(value) switch
    {
        PeMachine.X86 => "x86",
        PeMachine.X64 => "x64",
        PeMachine.Arm64 => "ARM64",
        PeMachine.Arm => "ARM32",
        _ => value == 0x200 ? "IA64" : $"machine 0x{value:x4}",
    };

    /// <summary>The names <see cref="Name"/> produces for known families (rules compare them case-insensitively).</summary>
    public static readonly IReadOnlySet<string> Names = new HashSet<string>(StringComparer.OrdinalIgnoreCase) { "x86", "x64", "arm64", "arm" };

    /// <summary>Whether <paramref name="value"/> has the name <paramref name="name"/> (a family name, or a raw "0x1c4").</summary>
    public static bool Is(ushort value, string name) =>
        string.Equals(Name(value), name, StringComparison.OrdinalIgnoreCase) || RawValue(name) == value;

    private static readonly Dictionary<ushort, string> SubsystemTable = new()
    {
        [1] = "native",
        [2] = "windows-gui",
        [3] = "windows-cui",
        [5] = "os2-cui",
        [7] = "posix-cui",
        [8] = "native-windows",
        [9] = "windows-ce-gui",
        [10] = "efi-application",
        [11] = "efi-boot-service-driver",
        [12] = "efi-runtime-driver",
        [13] = "efi-rom",
        [14] = "xbox",
        [16] = "windows-boot-application",
    };

    /// <summary>The subsystem names, in value order.</summary>
    public static readonly IReadOnlySet<string> SubsystemNames = new HashSet<string>(SubsystemTable.Values, StringComparer.OrdinalIgnoreCase);

    /// <summary>"native", "windows-gui", "efi-boot-service-driver", ..., or "0x{value:x}".</summary>
    public static string Subsystem(ushort value) => SubsystemTable.TryGetValue(value, out var name) ? name : $"0x{value:x}";

    /// <summary>Whether subsystem <paramref name="value"/> has the name <paramref name="name"/> (or the raw value "0x10").</summary>
    public static bool IsSubsystem(ushort value, string name) =>
        string.Equals(Subsystem(value), name, StringComparison.OrdinalIgnoreCase) || RawValue(name) == value;

    /// <summary>A raw numeric spelling such as 0x01c4 (accepted for values without a name), or null.</summary>
    public static uint? RawValue(string text) =>
        text.Length > 2 && text.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
        && uint.TryParse(text.AsSpan(2), System.Globalization.NumberStyles.AllowHexSpecifier, null, out var v) ? v : null;
}
