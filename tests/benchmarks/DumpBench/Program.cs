using System.Buffers.Binary;
using DriverAudit.TestSupport;
using DriverAudit.TestSupport.Dumps;

// Usage: DumpBench <fixtures/bin/x64> <out dir> <big dump GiB>
// Writes small.dmp (an x64 complete dump holding a few modules, every page stored) and big.dmp: the same
// pages, but the run table also declares two huge runs of physical memory around them that the file holds
// as holes (a sparse file). Both dumps list the same modules, so a scan of either reads the same pages.
// Also big.raw (a sparse raw memory image of the same size) and modules/ (its modules as files): see below.
if (args.Length != 3) { Console.Error.WriteLine("usage: DumpBench <fixtures/bin/x64> <out dir> <big dump GiB>"); return 2; }
var fixtures = args[0];
var outDir = args[1];
var gib = long.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture);
Directory.CreateDirectory(outDir);

// The same dump the README test writes as MEMORY.DMP (tests/DriverAudit.TestSupport/Dumps/SmallFixtureDump.cs).
var small = SmallFixtureDump.Write(fixtures, out var w);
File.WriteAllBytes(Path.Combine(outDir, "small.dmp"), small);

// big.dmp: runs = [hole run A] + the original runs + [hole run B]; pages are stored in run order.
const int HeaderSize = 0x2000, PageSize = 0x1000;
var header = small.AsSpan(0, HeaderSize).ToArray();
var runCount = (int)BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(0x88));
var runs = new List<(ulong Base, ulong Count)>();
for (var i = 0; i < runCount; i++)
    runs.Add((BinaryPrimitives.ReadUInt64LittleEndian(header.AsSpan(0x98 + 16 * i)), BinaryPrimitives.ReadUInt64LittleEndian(header.AsSpan(0xA0 + 16 * i))));
var holePages = (ulong)(gib << 30) / PageSize / 2;
var storedPages = (ulong)(small.Length - HeaderSize) / PageSize;
runs.Insert(0, (0x100_0000, holePages));
runs.Add((0x100_0000 + holePages, holePages));
BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(0x88), (uint)runs.Count);
var total = 0UL;
for (var i = 0; i < runs.Count; i++)
{
    BinaryPrimitives.WriteUInt64LittleEndian(header.AsSpan(0x98 + 16 * i), runs[i].Base);
    BinaryPrimitives.WriteUInt64LittleEndian(header.AsSpan(0xA0 + 16 * i), runs[i].Count);
    total += runs[i].Count;
}
BinaryPrimitives.WriteUInt64LittleEndian(header.AsSpan(0x90), total);
BinaryPrimitives.WriteUInt64LittleEndian(header.AsSpan(0xFA0), HeaderSize + total * PageSize);
using (var big = new FileStream(Path.Combine(outDir, "big.dmp"), FileMode.Create, FileAccess.Write))
{
    big.Write(header);
    big.Position = HeaderSize + (long)holePages * PageSize; // a hole: never written, no disk blocks
    big.Write(small.AsSpan(HeaderSize));
    big.SetLength(HeaderSize + (long)total * PageSize);
}
Console.WriteLine($"small.dmp {small.Length} bytes; big.dmp {HeaderSize + (long)total * PageSize} bytes ({runs.Count} runs, {storedPages} module/list pages stored, {total} pages declared); {w.Modules.Count} modules");

// big.raw: a raw physical memory image (no header) of the same size, sparse: a kernel exporting PsLoadedModuleList,
// the fixture HAL and drivers and their page tables in the first megabytes, the rest a hole. The scan must find the
// page-table root and the kernel itself (docs/crash-dumps.md §7). modules/ holds the same modules as files, to
// compare with scanning them directly.
var raw = new DumpWriter(DumpArch.X64);
var kernel = new PeBuilder(true) { ExportDllName = "ntoskrnl.exe", TimeDateStamp = 0x5F3E1A01 }
    .AddSection(".data", PeBuilder.DataCharacteristics, new byte[0x1000])
    .Export("PsLoadedModuleList", 1, PeBuilder.TextRva)
    .Build();
var modules = Path.Combine(outDir, "modules");
Directory.CreateDirectory(modules);
var k = raw.AddModule(@"\SystemRoot\system32\ntoskrnl.exe", 0xFFFFF80000200000, kernel.File);
raw.SetListHead(k.Base + PeBuilder.TextRva);
File.WriteAllBytes(Path.Combine(modules, "ntoskrnl.exe"), kernel.File);
string[] files = ["kernel/hal.dll", "{2F4E1D6C-6B3A-4C1F-9E8D-7A1B2C3D4E5F}.sys", "pool_modern.sys", "pool_legacy.sys"];
for (var i = 0; i < files.Length; i++)
{
    var bytes = File.ReadAllBytes(Path.Combine(fixtures, files[i]));
    var name = Path.GetFileName(files[i]);
    raw.AddModule((i == 0 ? @"\SystemRoot\system32\" : @"\SystemRoot\System32\drivers\") + name, 0xFFFFF80000400000 + (ulong)i * 0x20_0000, bytes);
    File.WriteAllBytes(Path.Combine(modules, name), bytes);
}
var image = raw.WriteRaw(selfMapIndex: 0x1A3);
var rawLength = Math.Max(gib << 30, image.Length);
using (var big = new FileStream(Path.Combine(outDir, "big.raw"), FileMode.Create, FileAccess.Write))
{
    big.Write(image); // the rest stays a hole: no disk blocks
    big.SetLength(rawLength);
}
Console.WriteLine($"big.raw {rawLength} bytes ({image.Length} written); modules/ {raw.Modules.Count} files");
return 0;
