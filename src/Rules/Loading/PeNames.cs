namespace DriverAudit.Rules.Loading;

/// <summary>The names a <c>header:</c> feature accepts, as the PE/COFF specification spells them.</summary>
internal static class PeNames
{
    /// <summary>IMAGE_DLLCHARACTERISTICS_* without the prefix.</summary>
    public static readonly IReadOnlyDictionary<string, ushort> DllCharacteristics = new Dictionary<string, ushort>(StringComparer.Ordinal)
    {
        ["HIGH_ENTROPY_VA"] = 0x0020,
        ["DYNAMIC_BASE"] = 0x0040,
        ["FORCE_INTEGRITY"] = 0x0080,
        ["NX_COMPAT"] = 0x0100,
        ["NO_ISOLATION"] = 0x0200,
        ["NO_SEH"] = 0x0400,
        ["NO_BIND"] = 0x0800,
        ["APPCONTAINER"] = 0x1000,
        ["WDM_DRIVER"] = 0x2000,
        ["GUARD_CF"] = 0x4000,
        ["TERMINAL_SERVER_AWARE"] = 0x8000,
    };

    /// <summary>IMAGE_FILE_* file-header characteristics without the prefix.</summary>
    public static readonly IReadOnlyDictionary<string, ushort> FileCharacteristics = new Dictionary<string, ushort>(StringComparer.Ordinal)
    {
        ["RELOCS_STRIPPED"] = 0x0001,
        ["EXECUTABLE_IMAGE"] = 0x0002,
        ["LINE_NUMS_STRIPPED"] = 0x0004,
        ["LOCAL_SYMS_STRIPPED"] = 0x0008,
        ["AGGRESSIVE_WS_TRIM"] = 0x0010,
        ["LARGE_ADDRESS_AWARE"] = 0x0020,
        ["BYTES_REVERSED_LO"] = 0x0080,
        ["32BIT_MACHINE"] = 0x0100,
        ["DEBUG_STRIPPED"] = 0x0200,
        ["REMOVABLE_RUN_FROM_SWAP"] = 0x0400,
        ["NET_RUN_FROM_SWAP"] = 0x0800,
        ["SYSTEM"] = 0x1000,
        ["DLL"] = 0x2000,
        ["UP_SYSTEM_ONLY"] = 0x4000,
        ["BYTES_REVERSED_HI"] = 0x8000,
    };
}
