using System.Buffers.Binary;

namespace DriverAudit.Scanner.Dumps;

/// <summary>Control registers of one virtual CPU, as a VMware checkpoint saved them.</summary>
internal readonly record struct VmwareCpu(int Index, ulong Cr3, ulong? Cr4);

/// <summary>What DriverAudit uses of a VMware suspend/snapshot state file: the vCPUs' CR3 (and CR4) values.</summary>
internal sealed record VmwareSavedState(string Path, IReadOnlyList<VmwareCpu> Cpus, string? Problem)
{
    public string FileName => System.IO.Path.GetFileName(Path);
}

/// <summary>
/// Reads the CR3 saved in a VMware checkpoint (<c>.vmss</c> suspend state, <c>.vmsn</c> snapshot) that sits beside a
/// <c>.vmem</c> (docs/crash-dumps.md §7). Layout: a 12-byte header (magic, version, group count), 80-byte group
/// descriptors (64-byte name, u64 position, u64 size), and in each group a run of tags ending with a zero tag. A tag
/// is a u16 (bits 15–8 name length, 7–6 index count, 5–0 value size; 0x3E/0x3F mark a compressed/plain block), the
/// name, up to three u32 indices, then the value or a block (sizes, u16 padding, data). Registers live in group
/// "cpu": <c>CR64[vcpu][n]</c> values, or one <c>CR64[vcpu]</c> block of CR0..CR8. Every read is bounded by the file
/// and the group; each tag advances the cursor, so a hostile file ends the walk, never loops.
/// </summary>
internal static class VmwareCheckpoint
{
    private const int HeaderSize = 12;
    private const int GroupSize = 80;
    private const int MaxGroups = 1024;
    private const int MaxTags = 1 << 20;
    private const int MaxCpus = 64;

    /// <summary>Magic values of checkpoint files (low nibble 0: the old format with 32-bit block sizes).</summary>
    private static readonly uint[] Magics = [0xBED0BED0, 0xBED2BED0, 0xBED2BED2, 0xBED3BED3, 0xBAD1BAD1, 0xBAD2BAD2];

    public static bool HasMagic(ReadOnlySpan<byte> head) =>
        head.Length >= 4 && Array.IndexOf(Magics, BinaryPrimitives.ReadUInt32LittleEndian(head)) >= 0;

    /// <summary>The state files VMware writes beside <paramref name="vmemPath"/> (suspend state first, then snapshot).</summary>
    public static IEnumerable<string> StateFilesBeside(string vmemPath)
    {
        var ext = Path.GetExtension(vmemPath);
        var stem = vmemPath[..^ext.Length];
        var upper = ext == ext.ToUpperInvariant();
        yield return stem + (upper ? ".VMSS" : ".vmss");
        yield return stem + (upper ? ".VMSN" : ".vmsn");
    }

    /// <summary>The memory file a state file belongs to (for the refusal message), when it exists.</summary>
    public static string? MemoryFileBeside(string statePath)
    {
        var ext = Path.GetExtension(statePath);
        var vmem = statePath[..^ext.Length] + (ext == ext.ToUpperInvariant() ? ".VMEM" : ".vmem");
        return File.Exists(vmem) ? vmem : null;
    }

    /// <summary>The first state file beside a <c>.vmem</c> that exists, read; null when there is none (or the image is not a .vmem).</summary>
    public static VmwareSavedState? ReadBeside(string vmemPath)
    {
        if (!Path.GetExtension(vmemPath).Equals(".vmem", StringComparison.OrdinalIgnoreCase)) return null;
        foreach (var candidate in StateFilesBeside(vmemPath))
        {
            if (!File.Exists(candidate)) continue;
            MappedDumpFile? file;
            try
            {
                file = MappedDumpFile.Open(candidate, out _);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
            {
                return new VmwareSavedState(candidate, [], $"cannot be opened ({e.Message})");
            }
            if (file is null) return new VmwareSavedState(candidate, [], "is empty");
            using (file) return Read(file, candidate);
        }
        return null;
    }

    internal static VmwareSavedState Read(MappedDumpFile file, string path)
    {
        Span<byte> header = stackalloc byte[HeaderSize];
        if (file.Read(0, header) != HeaderSize) return new(path, [], "is shorter than a checkpoint header");
        var magic = BinaryPrimitives.ReadUInt32LittleEndian(header);
        if (!HasMagic(header)) return new(path, [], $"has no VMware checkpoint magic (0x{magic:X8})");
        var wideBlocks = (magic & 0xF) != 0;
        var declared = BinaryPrimitives.ReadUInt32LittleEndian(header[8..]);
        var fit = (file.Length - HeaderSize) / GroupSize;
        var groups = (int)Math.Min(Math.Min(declared, fit), MaxGroups);
        Span<byte> group = stackalloc byte[GroupSize];
        for (var g = 0; g < groups; g++)
        {
            file.Read(HeaderSize + (long)g * GroupSize, group);
            var name = group[..64];
            var end = name.IndexOf((byte)0);
            if (!name[..(end < 0 ? 64 : end)].SequenceEqual("cpu"u8)) continue;
            var position = BinaryPrimitives.ReadUInt64LittleEndian(group[64..]);
            var size = BinaryPrimitives.ReadUInt64LittleEndian(group[72..]);
            if (position < HeaderSize || position >= (ulong)file.Length)
                return new(path, [], $"names its \"cpu\" group at 0x{position:X}, outside the file ({file.Length} bytes)");
            var limit = size > 0 && size <= (ulong)file.Length - position ? (long)(position + size) : file.Length;
            return ReadCpuGroup(file, path, (long)position, limit, wideBlocks);
        }
        return new(path, [], declared > groups
            ? $"declares {declared} groups but {groups} fit in the file, none named \"cpu\""
            : "has no \"cpu\" group");
    }

    /// <summary>Walks the "cpu" group's tags for CR64/CR values (index 3 = CR3, 4 = CR4, per vCPU).</summary>
    private static VmwareSavedState ReadCpuGroup(MappedDumpFile file, string path, long at, long limit, bool wideBlocks)
    {
        var cr3 = new SortedDictionary<int, ulong>();
        var cr4 = new Dictionary<int, ulong>();
        Span<byte> name = stackalloc byte[255];
        Span<uint> index = stackalloc uint[3];
        string? problem = null;
        for (var tags = 0; ; tags++)
        {
            if (tags >= MaxTags) { problem = $"has more than {MaxTags} tags in its \"cpu\" group; the rest were not read"; break; }
            if (at + 2 > limit || !TryU16(file, at, out var tag)) { problem = "ends inside its \"cpu\" group"; break; }
            if (tag == 0) break;
            var nameLength = tag >> 8;
            var indices = (tag >> 6) & 3;
            var valueSize = tag & 0x3F;
            at += 2;
            if (at + nameLength + indices * 4 > limit || file.Read(at, name[..nameLength]) != nameLength) { problem = "ends inside a tag of its \"cpu\" group"; break; }
            at += nameLength;
            for (var i = 0; i < indices; i++, at += 4)
            {
                file.TryReadUInt32(at, out var v);
                index[i] = v;
            }
            var n = name[..nameLength];
            var isCr = n.SequenceEqual("CR64"u8) || n.SequenceEqual("CR"u8);
            if (valueSize is 0x3E or 0x3F)
            {
                // Block: nbytes, nbytes in memory (u64 each, u32 in the old format), u16 padding, then the data.
                var sizeBytes = wideBlocks ? 8 : 4;
                if (at + sizeBytes * 2 + 2 > limit) { problem = "ends inside a block header of its \"cpu\" group"; break; }
                ulong blockBytes;
                if (wideBlocks) file.TryReadUInt64(at, out blockBytes);
                else { file.TryReadUInt32(at, out var b32); blockBytes = b32; }
                TryU16(file, at + sizeBytes * 2, out var pad);
                var data = at + sizeBytes * 2 + 2 + pad;
                if (blockBytes > (ulong)(limit - Math.Min(limit, data))) { problem = $"has a block of 0x{blockBytes:X} bytes running past its \"cpu\" group"; break; }
                // A CR64[vcpu] block holds CR0..CR8 (8 bytes each); compressed blocks (0x3E) are not read.
                if (isCr && valueSize == 0x3F && indices == 1 && index[0] < MaxCpus && blockBytes >= 32)
                {
                    file.TryReadUInt64(data + 24, out var v3);
                    cr3.TryAdd((int)index[0], v3);
                    if (blockBytes >= 40 && file.TryReadUInt64(data + 32, out var v4)) cr4.TryAdd((int)index[0], v4);
                }
                at = data + (long)blockBytes;
                continue;
            }
            if (at + valueSize > limit) { problem = "ends inside a value of its \"cpu\" group"; break; }
            if (isCr && indices == 2 && index[0] < MaxCpus && valueSize is 4 or 8)
            {
                ulong value;
                if (valueSize == 8) file.TryReadUInt64(at, out value);
                else { file.TryReadUInt32(at, out var v32); value = v32; }
                if (index[1] == 3) cr3.TryAdd((int)index[0], value);
                else if (index[1] == 4) cr4.TryAdd((int)index[0], value);
            }
            at += valueSize;
        }
        var cpus = cr3.Select(c => new VmwareCpu(c.Key, c.Value, cr4.TryGetValue(c.Key, out var v) ? v : null)).ToList();
        if (cpus.Count == 0) problem ??= "holds no CR3 in its \"cpu\" group";
        return new(path, cpus, problem);
    }

    private static bool TryU16(MappedDumpFile file, long at, out ushort value)
    {
        Span<byte> b = stackalloc byte[2];
        var ok = file.Read(at, b) == 2;
        value = BinaryPrimitives.ReadUInt16LittleEndian(b);
        return ok;
    }
}
