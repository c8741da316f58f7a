using System.Buffers.Binary;
using DriverAudit.Scanner.Images;
using DriverAudit.Scanner.Pe;

namespace DriverAudit.TestSupport.Dumps;

/// <summary>
/// Does what the kernel loader does to the IATs of the modules written into a dump: every slot receives the
/// address its import resolves to, forwarders followed (hal.KeGetCurrentIrql → ntoskrnl). Run it before
/// zeroing INIT, while the import descriptors are still there to read.
/// </summary>
public static class LoaderSim
{
    public static void BindAll(DumpWriter writer)
    {
        foreach (var m in writer.Modules) Relocate(writer, m);
        var images = writer.Modules.Select(m => (Module: m, Image: Open(m))).ToList();
        var resolver = PeExportResolver.FromImages(images.Select(x => KeyValuePair.Create(x.Module.Name, x.Image)));
        foreach (var (module, image) in images)
            foreach (var import in image.Imports.Imports)
            {
                var r = import.Name is not null ? resolver.Resolve(import.Module, import.Name) : resolver.Resolve(import.Module, import.Ordinal!.Value);
                if (!r.Success) throw new InvalidOperationException($"{module.Name}: {import.Module}!{import.Name} does not resolve ({r.Status}).");
                var target = writer.Modules.First(m => PeExportResolver.NormalizeModuleName(m.Name) == r.Module);
                WriteSlot(writer, module, import.SlotRva, target.Base + r.Export!.Rva);
            }
    }

    public static void WriteSlot(DumpWriter writer, WrittenModule module, uint rva, ulong value)
    {
        var bytes = new byte[writer.Is64 ? 8 : 4];
        if (writer.Is64) BinaryPrimitives.WriteUInt64LittleEndian(bytes, value);
        else BinaryPrimitives.WriteUInt32LittleEndian(bytes, checked((uint)value));
        bytes.CopyTo(module.Loaded, (int)rva);
        writer.WriteVirtual(module.Base + rva, bytes);
    }

    /// <summary>
    /// Applies the base relocations (directory 5) for the module's actual base, as the kernel loader does:
    /// x86 code then holds absolute addresses (IAT slots included) against the load base, not ImageBase.
    /// </summary>
    public static void Relocate(DumpWriter writer, WrittenModule module)
    {
        var image = Open(module);
        var delta = module.Base - image.ImageBase;
        var dir = image.GetDirectory(5);
        if (delta == 0 || !dir.IsPresent) return;
        var span = module.Loaded.AsSpan();
        for (uint at = dir.VirtualAddress, end = dir.VirtualAddress + dir.Size; at + 8 <= end;)
        {
            var page = BinaryPrimitives.ReadUInt32LittleEndian(span[(int)at..]);
            var size = BinaryPrimitives.ReadUInt32LittleEndian(span[(int)(at + 4)..]);
            if (size < 8) break;
            for (var e = at + 8; e + 2 <= at + size; e += 2)
            {
                var entry = BinaryPrimitives.ReadUInt16LittleEndian(span[(int)e..]);
                var rva = page + (uint)(entry & 0xFFF);
                switch (entry >> 12)
                {
                    case 3: // HIGHLOW
                        var v32 = BinaryPrimitives.ReadUInt32LittleEndian(span[(int)rva..]);
                        WriteBytes(writer, module, rva, BitConverter.GetBytes(unchecked(v32 + (uint)delta)));
                        break;
                    case 10: // DIR64
                        var v64 = BinaryPrimitives.ReadUInt64LittleEndian(span[(int)rva..]);
                        WriteBytes(writer, module, rva, BitConverter.GetBytes(unchecked(v64 + delta)));
                        break;
                }
            }
            at += size;
        }
    }

    private static void WriteBytes(DumpWriter writer, WrittenModule module, uint rva, byte[] bytes)
    {
        bytes.CopyTo(module.Loaded, (int)rva);
        writer.WriteVirtual(module.Base + rva, bytes);
    }

    /// <summary>The module as the loader left it (loaded layout), parsed.</summary>
    internal static PeImage Open(WrittenModule m) =>
        PeImage.TryOpen(new MemoryImageSource(m.Loaded.ToArray(), ImageLayout.Loaded, new ImageOrigin(m.Name))).Image
        ?? throw new InvalidOperationException($"{m.Name} does not parse");

    /// <summary>Zeroes a section in memory, as Windows discards INIT after DriverEntry.</summary>
    public static void ZeroSection(DumpWriter writer, WrittenModule module, string name)
    {
        var s = Open(module).Sections.Single(x => x.Name == name);
        writer.ZeroRange(module, s.Rva, (int)Math.Min(s.MappedSize, module.Size - s.Rva));
    }

    /// <summary>Clears a data directory entry in the in-memory headers.</summary>
    public static void ClearDirectory(DumpWriter writer, WrittenModule module, int index)
    {
        var lfanew = BinaryPrimitives.ReadInt32LittleEndian(module.Loaded.AsSpan(0x3C));
        var is64 = BinaryPrimitives.ReadUInt16LittleEndian(module.Loaded.AsSpan(lfanew + 24)) == 0x20B;
        var at = lfanew + 24 + (is64 ? 112 : 96) + 8 * index;
        writer.ZeroRange(module, (uint)at, 8);
    }
}
