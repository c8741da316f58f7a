namespace DriverAudit.Scanner.Dumps;

/// <summary>What a file without a crash-dump header is, as far as memory images go.</summary>
internal enum MemoryImageKind
{
    None,
    /// <summary>Raw physical memory (winpmem/DumpIt raw, VMware .vmem): read by DriverAudit.</summary>
    Raw,
    Hibernation,
    PageFile,
    LiME,
    ElfCore,
    Aff4,
    HyperVState,
    VMwareState,
}

/// <summary>
/// Recognises memory images by content and name (docs/crash-dumps.md §7): raw images are read, other formats
/// are refused with a message that says what they are and what to do. Never tries PE first: a file that starts
/// with "MZ" is a PE image and nothing here.
/// </summary>
internal static class MemoryImageFormat
{
    /// <summary>Bytes of the file's start <see cref="Identify"/> looks at.</summary>
    public const int HeadSize = 0x400;
    private static readonly string[] RawExtensions = [".raw", ".mem", ".vmem", ".dmp", ".img"];

    public static MemoryImageKind Identify(ReadOnlySpan<byte> head, string path, long length)
    {
        if (head.Length >= 2 && head[0] == 'M' && head[1] == 'Z') return MemoryImageKind.None;
        var name = Path.GetFileName(path);
        var ext = Path.GetExtension(path).ToLowerInvariant();
        if (head.Length >= 4)
        {
            var sig = head[..4];
            // hiberfil.sys: 'hibr'/'HIBR' while hibernated, 'wake'/'WAKE' after resume, 'RSTR'/'HORM' for other states.
            if (sig.SequenceEqual("hibr"u8) || sig.SequenceEqual("HIBR"u8) || sig.SequenceEqual("wake"u8) || sig.SequenceEqual("WAKE"u8)
                || sig.SequenceEqual("RSTR"u8) || sig.SequenceEqual("rstr"u8) || sig.SequenceEqual("HORM"u8) || sig.SequenceEqual("horm"u8))
                return MemoryImageKind.Hibernation;
            if (sig.SequenceEqual("EMiL"u8)) return MemoryImageKind.LiME;
            if (sig.SequenceEqual("\u007fELF"u8)) return MemoryImageKind.ElfCore;
            if (sig.SequenceEqual("PK\u0003\u0004"u8) && ext == ".aff4") return MemoryImageKind.Aff4;
            if (VmwareCheckpoint.HasMagic(head)) return MemoryImageKind.VMwareState;
        }
        // Windows zeroes hiberfil.sys's first page after resume, and pagefile.sys has no header at all.
        if (name.Equals("hiberfil.sys", StringComparison.OrdinalIgnoreCase)) return MemoryImageKind.Hibernation;
        if (name.Equals("pagefile.sys", StringComparison.OrdinalIgnoreCase) || name.Equals("swapfile.sys", StringComparison.OrdinalIgnoreCase))
            return MemoryImageKind.PageFile;
        if (ext is ".aff4") return MemoryImageKind.Aff4;
        if (ext is ".vmrs" or ".vmgs") return MemoryImageKind.HyperVState;
        if (ext is ".vmss" or ".vmsn") return MemoryImageKind.VMwareState;
        // A raw-image name is enough from 64 KiB (a cut image is still read, and explained); content alone needs
        // whole pages, at least 1 MiB, and the IVT.
        if (Array.IndexOf(RawExtensions, ext) >= 0 && length >= 0x1_0000) return MemoryImageKind.Raw;
        if (length < 0x10_0000 || length % 0x1000 != 0) return MemoryImageKind.None;
        return LooksLikeRealModeIvt(head) ? MemoryImageKind.Raw : MemoryImageKind.None;
    }

    /// <summary>
    /// Physical page 0 of a PC holds the real-mode interrupt vector table: 256 far pointers, most into the BIOS
    /// (segment 0xF000) or option ROMs (0xC000 and up). 128 such pointers in the first 1 KiB is no accident.
    /// </summary>
    internal static bool LooksLikeRealModeIvt(ReadOnlySpan<byte> head)
    {
        if (head.Length < 0x400) return false;
        var rom = 0;
        for (var i = 0; i < 256; i++)
        {
            var segment = System.Buffers.Binary.BinaryPrimitives.ReadUInt16LittleEndian(head[(i * 4 + 2)..]);
            if (segment >= 0xC000) rom++;
        }
        return rom >= 128;
    }

    /// <summary>Why a recognised but unsupported format is refused, and what to do instead.</summary>
    public static string RefusalMessage(MemoryImageKind kind) => kind switch
    {
        MemoryImageKind.Hibernation => "This is a Windows hibernation file (hiberfil.sys): its memory is compressed and it is not a driver. DriverAudit does not read it; convert it to a raw image first (e.g. volatility3 or Hibr2Bin), or scan a crash dump.",
        MemoryImageKind.PageFile => "This is a Windows page or swap file, not a driver and not a memory image DriverAudit can read; skipped.",
        MemoryImageKind.LiME => "This is a LiME memory image ('EMiL'), a Linux acquisition format; DriverAudit reads Windows crash dumps and raw Windows memory images.",
        MemoryImageKind.ElfCore => "This is an ELF core file (e.g. QEMU dump-guest-memory or VirtualBox debugvm dumpvmcore); DriverAudit does not read ELF cores. Write a raw image instead (QEMU: dump-guest-memory -z none to a raw file, or 'pmemsave').",
        MemoryImageKind.Aff4 => "This is an AFF4 container; DriverAudit does not read AFF4. Export the memory stream as a raw image first.",
        MemoryImageKind.HyperVState => "This is a Hyper-V saved-state file (.vmrs/.vmgs); DriverAudit does not read it. Convert it with vm2dmp or Hyper-V's vmsavedstatedumpprovider to a crash dump first.",
        MemoryImageKind.VMwareState => "This is a VMware suspend or snapshot state file (.vmss/.vmsn): it holds the virtual CPUs' registers, not the memory. Scan the .vmem of the same name (keep this file beside it: its saved CR3 is then used); no .vmem was found beside this one.",
        _ => "Not a memory image.",
    };
}
