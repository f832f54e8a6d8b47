using System.Buffers.Binary;
using Cairn.Core;

namespace Cairn.Sandbox.Tests;

/// <summary>
/// The generated BPF program, run by a small classic-BPF interpreter over synthetic seccomp_data for both
/// architectures (aarch64 cannot run here); <see cref="SeccompSandboxTests"/> checks the real kernel's verdicts.
/// </summary>
public sealed class SeccompFilterTests
{
    private const uint Allow = SeccompFilter.RetAllow;
    private const uint Eperm = SeccompFilter.RetErrno | SeccompFilter.Eperm;
    private const uint Enosys = SeccompFilter.RetErrno | SeccompFilter.Enosys;
    private const uint Kill = SeccompFilter.RetKillProcess;

    // (name, x86_64 number, aarch64 number); -1: the architecture has no such call.
    private static readonly (string Name, int X86, int Arm)[] Calls =
    [
        ("read", 0, 63), ("write", 1, 64), ("openat", 257, 56), ("execve", 59, 221), ("ptrace", 101, 117),
        ("chmod", 90, -1), ("fchmod", 91, 52), ("fchmodat", 268, 53), ("fchmodat2", 452, 452), ("mknod", 133, -1), ("mknodat", 259, 33),
        ("ioctl", 16, 29), ("clone", 56, 220), ("clone3", 435, 435), ("unshare", 272, 97), ("setns", 308, 268),
        ("mount", 165, 40), ("umount2", 166, 39), ("pivot_root", 155, 41), ("move_mount", 429, 429), ("open_tree", 428, 428),
        ("fsopen", 430, 430), ("fsmount", 432, 432), ("kexec_load", 246, 104), ("kexec_file_load", 320, 294),
        ("init_module", 175, 105), ("finit_module", 313, 273), ("delete_module", 176, 106), ("bpf", 321, 280),
        ("perf_event_open", 298, 241), ("userfaultfd", 323, 282), ("keyctl", 250, 219), ("add_key", 248, 217), ("request_key", 249, 218),
    ];

    private static readonly string[] AlwaysDenied =
    [
        "setns", "mount", "umount2", "pivot_root", "move_mount", "open_tree", "fsopen", "fsmount", "kexec_load", "kexec_file_load",
        "init_module", "finit_module", "delete_module", "bpf", "perf_event_open", "userfaultfd", "keyctl", "add_key", "request_key",
    ];

    [Theory]
    [InlineData(SeccompArchitecture.X86_64)]
    [InlineData(SeccompArchitecture.Aarch64)]
    public void Each_rule_gives_its_verdict(SeccompArchitecture arch)
    {
        var program = SeccompFilter.Build(arch);
        Assert.Equal(0, program.Length % 8);
        var audit = arch == SeccompArchitecture.X86_64 ? SeccompFilter.AuditArchX86_64 : SeccompFilter.AuditArchAarch64;
        uint Run(string name, params ulong[] args)
        {
            var (_, x86, arm) = Calls.Single(c => c.Name == name);
            var nr = arch == SeccompArchitecture.X86_64 ? x86 : arm;
            Assert.True(nr >= 0, $"{name} does not exist on {arch}");
            return Interpret(program, Data((uint)nr, audit, args));
        }

        bool Has(string name) => Calls.Single(c => c.Name == name) is var c && (arch == SeccompArchitecture.X86_64 ? c.X86 : c.Arm) >= 0;

        foreach (var name in new[] { "read", "write", "openat", "execve", "ptrace" }) Assert.Equal(Allow, Run(name, 3, 0x4000, 0x6000));
        foreach (var name in AlwaysDenied) Assert.Equal(Eperm, Run(name));
        Assert.Equal(Enosys, Run("clone3", 0, 88));

        // The mode argument: plain modes pass, set-user/group-ID bits do not (also above the kernel's 16 bits).
        var modeArg = new Dictionary<string, int> { ["chmod"] = 1, ["fchmod"] = 1, ["fchmodat"] = 2, ["fchmodat2"] = 2 };
        foreach (var (name, index) in modeArg.Where(m => Has(m.Key)))
        {
            Assert.Equal(Allow, Run(name, WithArg(index, 0x1ed))); // 0755
            Assert.Equal(Allow, Run(name, WithArg(index, 0x3ff))); // 01777: sticky is fine
            Assert.Equal(Eperm, Run(name, WithArg(index, 0x9ed))); // 04755
            Assert.Equal(Eperm, Run(name, WithArg(index, 0x5ed))); // 02755
            Assert.Equal(Eperm, Run(name, WithArg(index, 0xffff_0000_0000_0000UL | 0x800)));
        }

        var mknodArg = new Dictionary<string, int> { ["mknod"] = 1, ["mknodat"] = 2 };
        foreach (var (name, index) in mknodArg.Where(m => Has(m.Key)))
        {
            Assert.Equal(Allow, Run(name, WithArg(index, 0x1000 | 0x1a4))); // FIFO
            Assert.Equal(Allow, Run(name, WithArg(index, 0xc000 | 0x1a4))); // socket
            Assert.Equal(Allow, Run(name, WithArg(index, 0x8000 | 0x1a4))); // regular file
            Assert.Equal(Eperm, Run(name, WithArg(index, 0x2000 | 0x1a4))); // character device
            Assert.Equal(Eperm, Run(name, WithArg(index, 0x6000 | 0x1a4))); // block device
        }

        Assert.Equal(Eperm, Run("ioctl", 0, 0x5412));
        Assert.Equal(Eperm, Run("ioctl", 0, 0x541c));
        Assert.Equal(Eperm, Run("ioctl", 0, 0x1_0000_5412)); // the kernel reads cmd as 32 bits
        Assert.Equal(Allow, Run("ioctl", 0, 0x5401)); // TCGETS
        Assert.Equal(Allow, Run("ioctl", 0, 0x541b)); // FIONREAD

        Assert.Equal(Allow, Run("clone", 0x01200011)); // fork: CLONE_CHILD_SETTID|CLONE_CHILD_CLEARTID|SIGCHLD
        Assert.Equal(Allow, Run("clone", 0x003d0f00)); // pthread_create's flags
        foreach (var flag in new ulong[] { 0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000 })
        {
            Assert.Equal(Eperm, Run("clone", flag | 0x11));
            Assert.Equal(Eperm, Run("unshare", flag));
        }

        Assert.Equal(Eperm, Run("unshare", 0x80)); // CLONE_NEWTIME
        Assert.Equal(Allow, Run("unshare", 0x400)); // CLONE_FILES: no namespace

        // Another architecture's calls (i386, arm32) are killed whatever their number.
        Assert.Equal(Kill, Interpret(program, Data(0, 0x40000003, [])));
        Assert.Equal(Kill, Interpret(program, Data(0, arch == SeccompArchitecture.X86_64 ? SeccompFilter.AuditArchAarch64 : SeccompFilter.AuditArchX86_64, [])));
        if (arch == SeccompArchitecture.X86_64)
        {
            Assert.Equal(Kill, Interpret(program, Data(SeccompFilter.X32SyscallBit | 165, audit, []))); // x32 mount
        }
    }

    [Fact]
    public void An_unknown_architecture_is_refused_clearly()
    {
        var e = Assert.Throws<CairnException>(() => SeccompFilter.Build((SeccompArchitecture)42));
        Assert.Equal(ErrorCode.SeccompArchitectureUnsupported, e.Code);
        Assert.Contains("x86_64 and aarch64", e.Message, StringComparison.Ordinal);
    }

    private static ulong[] WithArg(int index, ulong value)
    {
        var args = new ulong[6];
        args[index] = value;
        return args;
    }

    private static byte[] Data(uint nr, uint arch, ulong[] args)
    {
        var data = new byte[64];
        BinaryPrimitives.WriteUInt32LittleEndian(data, nr);
        BinaryPrimitives.WriteUInt32LittleEndian(data.AsSpan(4), arch);
        BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(8), 0x400000);
        for (var i = 0; i < args.Length; i++) BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(16 + (8 * i)), args[i]);
        return data;
    }

    /// <summary>The subset of classic BPF seccomp allows: LD W ABS, ALU AND K, JA, JEQ/JGE/JSET K, RET K.</summary>
    private static uint Interpret(byte[] program, byte[] data)
    {
        uint a = 0;
        var pc = 0;
        for (var steps = 0; steps < 10_000; steps++)
        {
            Assert.InRange(pc, 0, (program.Length / 8) - 1);
            var insn = program.AsSpan(pc * 8, 8);
            var code = BinaryPrimitives.ReadUInt16LittleEndian(insn);
            var (jt, jf) = (insn[2], insn[3]);
            var k = BinaryPrimitives.ReadUInt32LittleEndian(insn[4..]);
            pc++;
            switch (code)
            {
                case 0x20:
                    Assert.True(k % 4 == 0 && k + 4 <= data.Length, $"load at {k}");
                    a = BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan((int)k));
                    break;
                case 0x54: a &= k; break;
                case 0x05: pc += (int)k; break;
                case 0x15: pc += a == k ? jt : jf; break;
                case 0x35: pc += a >= k ? jt : jf; break;
                case 0x45: pc += (a & k) != 0 ? jt : jf; break;
                case 0x06: return k;
                default: throw new InvalidOperationException($"unexpected BPF opcode 0x{code:x}");
            }
        }

        throw new InvalidOperationException("the program does not end");
    }
}
