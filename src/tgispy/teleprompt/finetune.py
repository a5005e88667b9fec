"""DSPy 2.4's ``dspy.teleprompt.finetune`` module path."""

from tgispy.teleprompt import BootstrapFinetune

__all__ = ["BootstrapFinetune"]
