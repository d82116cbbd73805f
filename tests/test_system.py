import torch

from gatedrec.system import cpu_fields, cpu_model, machine


def test_cpu_model_reads_family_and_model_not_model_name(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\ncpu family\t: 25\nmodel\t\t: 17\nmodel name\t: AMD EPYC\n\nprocessor\t: 1\n"
                       "cpu family\t: 99\n")
    assert cpu_model(cpu_fields(cpuinfo)) == "family 25 model 17"
    assert cpu_fields(cpuinfo)["model name"] == "AMD EPYC"


def test_cpu_model_is_none_without_cpuinfo(tmp_path):
    assert cpu_model(cpu_fields(tmp_path / "missing")) is None
    assert cpu_fields(tmp_path / "missing").get("model") is None


def test_machine_names_the_vector_unit_and_bfloat16_support():
    figures = machine()
    assert figures["vector_unit"] == torch.backends.cpu.get_cpu_capability() != ""
    assert isinstance(figures["native_bfloat16"], bool)
    assert figures["cores"] >= 1
