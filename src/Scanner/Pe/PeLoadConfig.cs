using System.Buffers.Binary;

namespace DriverAudit.Scanner.Pe;

/// <summary>
/// The fields of IMAGE_LOAD_CONFIG_DIRECTORY the audit needs. A field is null when the structure's Size does
/// not cover it (older linkers write shorter structures).
/// </summary>
internal sealed record PeLoadConfig(
    PeTableStatus Status,
    uint Size,
    ulong? SecurityCookie,
    ulong? GuardCFCheckFunctionPointer,
    ulong? GuardCFFunctionTable,
    ulong? GuardCFFunctionCount,
    uint? GuardFlags)
{
    public const uint GuardCfInstrumented = 0x100;
    public static PeLoadConfig Absent { get; } = new(PeTableStatus.Absent, 0, null, null, null, null, null);
    public static PeLoadConfig Unreadable { get; } = new(PeTableStatus.Unreadable, 0, null, null, null, null, null);

    public bool HasGuardCFFunctionTable => GuardCFFunctionTable is > 0;
}

/// <summary>Reads directory 10, honouring the structure's own Size field.</summary>
internal static class PeLoadConfigReader
{
    private const int MaxRead = 0x200;

    public static PeLoadConfig Read(PeImage image)
    {
        var dir = image.GetDirectory(10);
        if (dir.VirtualAddress == 0) return PeLoadConfig.Absent;
        if (!image.TryReadUInt32(dir.VirtualAddress, out var size))
        {
            image.Diagnose(PeDiagnosticCodes.LoadConfigUnreadable, $"load config at RVA 0x{dir.VirtualAddress:x} is outside the image or on a missing page");
            return PeLoadConfig.Unreadable;
        }
        // The structure's Size is authoritative for the loader; the directory size is a fallback for a zero Size.
        var effective = (int)Math.Min(size != 0 ? size : dir.Size, MaxRead);
        Span<byte> b = stackalloc byte[MaxRead];
        var got = image.ReadRva(dir.VirtualAddress, b[..effective]);
        var status = PeTableStatus.Ok;
        if (got < effective)
        {
            image.Diagnose(PeDiagnosticCodes.LoadConfigUnreadable, $"load config at RVA 0x{dir.VirtualAddress:x}: only {got} of {effective} bytes readable");
            status = PeTableStatus.Incomplete;
        }
        var data = b[..got];
        return image.Is64Bit
            ? new PeLoadConfig(status, size, U64(data, 88), U64(data, 112), U64(data, 128), U64(data, 136), U32(data, 144))
            : new PeLoadConfig(status, size, U32(data, 60), U32(data, 72), U32(data, 80), U32(data, 84), U32(data, 88));
    }

    private static ulong? U64(ReadOnlySpan<byte> d, int at) => at + 8 <= d.Length ? BinaryPrimitives.ReadUInt64LittleEndian(d[at..]) : null;
    private static uint? U32(ReadOnlySpan<byte> d, int at) => at + 4 <= d.Length ? BinaryPrimitives.ReadUInt32LittleEndian(d[at..]) : null;
}
