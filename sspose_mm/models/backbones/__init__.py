from .hrnet_s import HRNetS

__all__ = ['HRNetS']
