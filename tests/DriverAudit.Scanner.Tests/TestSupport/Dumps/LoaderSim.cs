using System.Buffers.Binary;
using DriverAudit.Scanner.Images;
using DriverAudit.Scanner.Pe;

namespace DriverAudit.Scanner.Tests.TestSupport.Dumps;

/// <summary>
/// Does what the kernel loader does to the IATs of the modules written into a dump: every slot receives the
/// address its import resolves to, forwarders followed (hal.KeGetCurrentIrql → ntoskrnl). Run it before
/// zeroing INIT, while the import descriptors are still there to read.
/// </summary>
public static class LoaderSim
{
    public static void BindAll(DumpWriter writer)
    {
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

    /// <summary>The module as the loader left it (loaded layout), parsed.</summary>
    public static PeImage Open(WrittenModule m) =>
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
